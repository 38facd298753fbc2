"""vpr-ros evaluate offline: bags (MCAP, sqlite3) and VG folders -> report.json/md + plots."""
import json
import math

import numpy as np
import pytest

from node_fixtures import build_test_map, place_images
from vpr_ros.cli import main

N_PLACES = 8
SPACING = 30.0
# frames (place image shown, place whose pose is recorded): two mislabelled frames are wrong
FRAMES = [(i, i) for i in range(N_PLACES)] + [(1, 5), (6, 2)]
EXPECTED_R1 = N_PLACES / len(FRAMES)


def write_eval_bag(path, images, storage='mcap', frames=FRAMES, dt=0.5, t0=100.0):
    """A bag whose frame k shows place ``frames[k][0]`` at the pose of ``frames[k][1]``."""
    from vpr_ros.io.bag_writer import write_bag
    imgs = [(t0 + k * dt, images[a]) for k, (a, _) in enumerate(frames)]
    poses = [(t0 + k * dt + s, b * SPACING + 2.0, 0.0, 0.0)
             for k, (_, b) in enumerate(frames) for s in (-0.05, 0.05)]
    return write_bag(path, imgs, poses, storage=storage)


@pytest.fixture(scope='module')
def bag_world(tmp_path_factory, test_model):
    model, size = test_model
    tmp = tmp_path_factory.mktemp('evalbag')
    images = place_images(N_PLACES, size=(72, 96))
    build_test_map(tmp / 'map', model, size, images, spacing_m=SPACING)
    return {'tmp': tmp, 'images': images, 'map': tmp / 'map', 'model': model, 'size': size,
            'params': single_frame_params(tmp / 'params.yaml')}


def single_frame_params(path):
    """The package's localize.yaml with the matcher's temporal filter off: the test bags jump
    30 m between frames, and single-frame priors are what the assertions compute by hand."""
    from vpr_ros import params_file
    from vpr_ros.share import share_dir
    params = params_file.load(share_dir() / 'config' / 'localize.yaml')
    return params_file.dump(params_file.set_node_params(params, 'matcher', {'use_filter': False}),
                            path)


def build_vg_map(path, root, model, size):
    """The places (and origin) exactly as build-map's VG source makes them, encoded by the
    runtime encoder the query_encoder node uses."""
    from vpr_ros.imaging import read_image_file
    from vpr_ros.mapstore import MapStore
    from vpr_ros.mapstore.sources import VGSource
    from vpr_ros.models.runtime import load_encoder
    src = VGSource(root)
    items = list(src)
    enc = load_encoder(model=model, input_size=tuple(size))
    descs = np.concatenate([enc.encode(read_image_file(it.image)) for it in items])
    with MapStore.create(path, encoder=enc.name, dim=enc.dim, dtype='float32',
                         origin=src.origin) as store:
        store.add(descs, [it.place for it in items])
        store.save()


def evaluate(world, *extra):
    size = [str(v) for v in world['size']]
    params = ['--params-file', world['params']] if world.get('params') else []
    return main(['evaluate', '--map', str(world['map']), '--input-size', *size, '--threads', '1',
                 *params, *extra])


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_offline_bag_report(bag_world, tmp_path, storage, capsys):
    bag = write_eval_bag(tmp_path / 'bag', bag_world['images'], storage)
    out = tmp_path / 'report'
    assert evaluate(bag_world, '--bag', str(bag), '--out', str(out)) == 0
    rep = json.loads((out / 'report.json').read_text())
    assert set(rep['recall_at']) == {'1', '5', '10'}
    assert rep['num_queries'] == len(FRAMES) and rep['threshold_m'] == 25.0
    assert rep['recall_at']['1'] == pytest.approx(EXPECTED_R1)
    assert rep['recall_at']['10'] == 1.0  # 8 places: every true place is in the top 10
    assert rep['input']['image_topic'] == '/camera/image_raw'
    assert rep['input']['pose_topic'] == '/odom' and rep['frames_dropped'] == 0
    assert rep['model']['model'] == bag_world['model'] and rep['map']['places'] == N_PLACES
    for stage in ('decode', 'encode', 'search', 'summarize'):
        assert rep['latency_ms'][stage]['p50'] > 0
    # correct frames are localized a couple of metres from the truth (pose at +2 m)
    assert rep['pose_error']['all_answered']['position_m']['p50'] < 5.0
    assert rep['throughput']['frames_per_s'] > 0
    for name in ('report.md', 'trajectory.png', 'pr_curve.png', 'latency_hist.png'):
        assert (out / name).stat().st_size > 1000
    md = (out / 'report.md').read_text()
    assert '| all | %.3f |' % EXPECTED_R1 in md
    printed = capsys.readouterr().out
    assert 'R@1 %.3f' % EXPECTED_R1 in printed and str(out / 'report.md') in printed


def test_yaw_threshold_rejects_opposite_headings(bag_world, tmp_path):
    from vpr_ros.io.bag_writer import write_bag
    imgs = [(100.0 + k, bag_world['images'][k]) for k in range(4)]
    yaws = [0.0, math.pi, 0.2, -3.0]  # map places look along yaw 0
    poses = [(100.0 + k + s, k * SPACING, 0.0, yaws[k]) for k in range(4) for s in (-.05, .05)]
    bag = write_bag(tmp_path / 'bag', imgs, poses)
    for thr, r1 in (('none', 1.0), ('45', 0.5)):
        out = tmp_path / f'r{thr}'
        assert evaluate(bag_world, '--bag', str(bag), '--out', str(out), '--no-plots',
                        '--yaw-threshold-deg', thr) == 0
        rep = json.loads((out / 'report.json').read_text())
        assert rep['recall_at']['1'] == pytest.approx(r1)
    assert rep['yaw_threshold_deg'] == 45.0
    assert rep['pose_error']['all_answered']['yaw_deg']['p50'] > 0


def test_bag_without_image_topic_lists_topics(bag_world, tmp_path, capsys):
    from vpr_ros.io.bag_writer import write_bag
    bag = write_bag(tmp_path / 'bag', [], [(100.0, 0.0, 0.0, 0.0)])
    assert evaluate(bag_world, '--bag', str(bag), '--out', str(tmp_path / 'o')) == 2
    err = capsys.readouterr().err
    assert 'no image topic' in err and '/odom [nav_msgs/msg/Odometry]' in err
    assert '/chatter [std_msgs/msg/String]' in err
    assert not (tmp_path / 'o' / 'report.json').exists()
    bag = write_eval_bag(tmp_path / 'bag2', bag_world['images'][:2], frames=[(0, 0), (1, 1)])
    assert evaluate(bag_world, '--bag', str(bag), '--image-topic', '/nope') == 2
    err = capsys.readouterr().err
    assert "no topic '/nope'" in err and '/camera/image_raw [sensor_msgs/msg/Image]' in err


def test_truncated_bag_warns_and_still_reports(bag_world, tmp_path):
    frames = [(i % N_PLACES, i % N_PLACES) for i in range(40)]
    big = [np.kron(im, np.ones((2, 2, 1), np.uint8)) for im in bag_world['images']]
    bag = write_eval_bag(tmp_path / 'bag', big, 'mcap', frames=frames)
    f = next(bag.glob('*.mcap'))
    f.write_bytes(f.read_bytes()[:int(f.stat().st_size * 0.7)])
    out = tmp_path / 'r'
    assert evaluate(bag_world, '--bag', str(bag), '--out', str(out), '--no-plots') == 0
    rep = json.loads((out / 'report.json').read_text())
    assert 0 < rep['num_frames'] < 40
    assert rep['recall_at']['1'] == 1.0
    assert rep['input']['bag_warnings'] >= 1
    assert any('truncated' in w or 'damaged' in w or 'unreadable' in w
               for w in rep['warnings'])
    assert 'Warnings' in (out / 'report.md').read_text()


def test_missing_poses_are_excluded_and_reported(bag_world, tmp_path):
    from vpr_ros.io.bag_writer import write_bag
    imgs = [(100.0 + k, bag_world['images'][k]) for k in range(4)]
    poses = [(100.0 + k + s, k * SPACING, 0.0, 0.0) for k in (0, 2) for s in (-.05, .05)]
    bag = write_bag(tmp_path / 'bag', imgs, poses)
    out = tmp_path / 'r'
    assert evaluate(bag_world, '--bag', str(bag), '--out', str(out), '--no-plots') == 0
    rep = json.loads((out / 'report.json').read_text())
    assert rep['num_frames'] == 4 and rep['num_queries'] == 2
    assert rep['frames_without_ground_truth'] == 2 and rep['input']['missing_poses'] == 2
    assert rep['recall_at']['1'] == 1.0
    assert any('no pose within' in w for w in rep['warnings'])


def test_vg_folder_with_conditions(tmp_path, test_model):
    """Map built from a VG database by build-map; queries in another condition per place."""
    import cv2
    from vpr_ros.geo import MapOrigin
    from vpr_ros.io.vg import format_vg_name, VGRecord
    model, size = test_model
    origin = MapOrigin.from_latlon(47.37, 8.54)
    images = place_images(6, size=(72, 96), seed=3)
    root = tmp_path / 'vg'
    for sub in ('database', 'queries'):
        (root / sub).mkdir(parents=True)

    def save(sub, img, x, cond, i):
        e, n = origin.xy_to_utm([[x, 40.0]])[0]
        rec = VGRecord('', e, n, origin.zone_number, origin.zone_letter, heading=90.0,
                       timestamp=f'{i:04d}', note=cond)
        cv2.imwrite(str(root / sub / format_vg_name(rec)), img[..., ::-1])
    for i, img in enumerate(images):
        save('database', img, i * SPACING, 'day', i)
        # 'night' queries of places 0..3 are right; 'fog' queries show place i at place i+3
        cond, shown = ('night', i) if i < 4 else ('fog', i - 3)
        save('queries', images[shown], i * SPACING + 3.0, cond, i)
    build_vg_map(tmp_path / 'map', root, model, size)
    out = tmp_path / 'r'
    world = {'map': tmp_path / 'map', 'size': size}
    assert evaluate(world, '--vg', str(root / 'queries'), '--out', str(out)) == 0
    rep = json.loads((out / 'report.json').read_text())
    assert rep['num_queries'] == 6 and rep['recall_at']['1'] == pytest.approx(4 / 6)
    by = rep['recall_at_by_condition']
    assert by['night']['recall_at']['1'] == 1.0 and by['night']['num_queries'] == 4
    assert by['fog']['recall_at']['1'] == 0.0
    assert rep['pose_error']['published']['count'] >= 1
    assert (out / 'trajectory.png').is_file() and '| night |' in (out / 'report.md').read_text()


def test_bad_map_is_a_clean_error(tmp_path, capsys):
    assert main(['evaluate', '--map', str(tmp_path / 'nomap'), '--vg', str(tmp_path)]) == 2
    assert 'does not exist' in capsys.readouterr().err


def test_geo_map_uses_navsatfix_ground_truth(tmp_path, test_model):
    """A world-generator bag has /odom (world frame) and /gps/fix: with a geo-referenced map
    whose origin is elsewhere, the fix (through the map's origin) is the usable ground truth."""
    from vpr_ros.geo import MapOrigin
    from vpr_ros.mapstore import MapStore, PlaceRecord
    from vpr_ros.models.runtime import load_encoder
    from vpr_ros.world.bagwriter import write_bag
    from vpr_ros.world.camera import CameraPose
    model, size = test_model
    world = MapOrigin.from_latlon(47.37, 8.54)
    shift = 100.0  # the map frame starts 100 m east of the world frame
    map_origin = MapOrigin(world.easting + shift, world.northing, world.zone_number,
                           world.zone_letter)
    from vpr_ros.imaging import decode_compressed, encode_compressed
    images = place_images(5, size=(72, 96), seed=5)
    enc = load_encoder(model=model, input_size=tuple(size))
    jpeg = [decode_compressed('jpeg', encode_compressed(im, quality=90)) for im in images]
    with MapStore.create(tmp_path / 'map', encoder=enc.name, dim=enc.dim, dtype='float32',
                         origin=map_origin) as store:
        store.add(np.concatenate([enc.encode(im) for im in jpeg]),
                  [PlaceRecord(x=i * SPACING - shift, y=0.0, yaw=0.0) for i in range(5)])
        store.save()
    frames = [(10**18 + i * 10**8, CameraPose(i * SPACING, 0.0), images[i]) for i in range(5)]
    bag = write_bag(tmp_path / 'bag', frames, world, 'mcap')
    out = tmp_path / 'r'
    w = {'map': tmp_path / 'map', 'size': size}
    assert evaluate(w, '--bag', str(bag), '--out', str(out), '--no-plots') == 0
    rep = json.loads((out / 'report.json').read_text())
    assert rep['input']['pose_topic'] == '/gps/fix' and rep['recall_at']['1'] == 1.0
    assert rep['input']['image_topic'] == '/camera/image_raw/compressed'
    # naming /odom (world frame, 100 m off the map frame): aligned to the bag's NavSatFix
    assert evaluate(w, '--bag', str(bag), '--out', str(out), '--no-plots',
                    '--pose-topic', '/odom') == 0
    rep = json.loads((out / 'report.json').read_text())
    assert rep['recall_at']['1'] == 1.0 and rep['input']['pose_topic'] == '/odom'
    assert 'aligned to /gps/fix' in rep['ground_truth']['ground_truth_frame']
