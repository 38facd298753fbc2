"""generate_world outputs: VG names, GSV-Cities layout, rosbags, and the dataset readers."""
import csv
import json

import numpy as np
import pytest

from vpr_ros.geo import MapOrigin
from vpr_ros.imaging import decode_compressed
from vpr_ros.io.datasets import PlaceDataset, read_gsv_cities, read_vg, rows_by_place
from vpr_ros.io.vg import parse_vg_name
from vpr_ros.world.generate import WorldConfig, generate_world

PLACES = 6
CONDS = ('day', 'night', 'rain')


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp('world')
    cfg = WorldConfig(seed=21, out=str(out), places=PLACES, spacing_m=12.0, conditions=CONDS,
                      size=(64, 48), supersample=1, images_per_place=4, rate_hz=10.0,
                      speed_mps=10.0, kidnap=True, bag_raw=True, progress=False,
                      lat=-33.8688, lon=151.2093)
    return cfg, generate_world(cfg)


def _places(out):
    with open(out / 'places.csv') as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


def test_vg_names_parse_back_to_the_poses(world):
    cfg, summary = world
    origin = MapOrigin.from_latlon(cfg.lat, cfg.lon)
    places = _places(summary.out)
    db = summary.paths['vg_database']
    assert len(db) == PLACES and len(summary.paths['vg_queries']) == PLACES * (len(CONDS) - 1)
    for path, place in zip(db, places):
        rec = parse_vg_name(path.name)
        assert rec.note == 'day' and rec.pano_id == f'p{int(place["place_id"]):05d}'
        xy = np.array([rec.utm_e - origin.easting, rec.utm_n - origin.northing])
        assert np.allclose(xy, [place['x'], place['y']], atol=0.01)
        assert np.allclose(origin.latlon_to_xy(rec.lat, rec.lon)[0], xy, atol=0.05)
        heading = (90.0 - np.degrees(place['yaw'])) % 360.0
        assert abs((rec.heading - heading + 180) % 360 - 180) < 0.06
        assert rec.zone_number == origin.zone_number and rec.zone_letter == 'H'  # Sydney
    notes = sorted(parse_vg_name(p.name).note for p in summary.paths['vg_queries'])
    assert notes == sorted(['night', 'rain'] * PLACES)


def test_gsv_layout_is_readable_with_consistent_places(world):
    cfg, summary = world
    city = f'Synth{cfg.seed}'
    assert summary.paths['gsv_csv'][0].name == f'{city}.csv'
    rows = read_gsv_cities(summary.out)
    assert len(rows) == PLACES * 4
    groups = rows_by_place(rows)
    assert sorted(groups) == list(range(PLACES))
    for pid, idx in groups.items():
        assert len(idx) == 4
        assert {rows[i].condition for i in idx} == set(CONDS)
        xy = np.array([[rows[i].x, rows[i].y] for i in idx])
        assert np.linalg.norm(xy - xy.mean(0), axis=1).max() < 4.0  # one place, jittered views
    centres = np.array([np.mean([[rows[i].x, rows[i].y] for i in groups[p]], 0)
                        for p in range(PLACES)])
    gaps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    assert gaps.min() > 6.0  # consecutive places are ~12 m apart
    name = rows[0].path.rsplit('/', 1)[1]
    assert name.startswith(f'{city}_0000000_2019_06_')


def test_dataset_wrapper_and_vg_reader(world):
    _, summary = world
    gsv = PlaceDataset(read_gsv_cities(summary.out), transform=lambda im: im.mean())
    value, pid, index = gsv[5]
    assert isinstance(value, float) and pid == gsv.rows[5].place_id and index == 5
    raw = PlaceDataset(read_vg(summary.out / 'test' / 'queries'))
    img, pid, _ = raw[0]
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    assert len(set(raw.place_ids())) == PLACES
    grid = read_vg(summary.out / 'test' / 'database', cell_m=1000.0, use_pano_places=False)
    assert len({r.place_id for r in grid}) < PLACES  # coarse geo cells merge places
    db = read_vg(summary.out / 'test' / 'database')
    places = _places(summary.out)
    assert np.allclose([[r.x, r.y] for r in db], [[p['x'], p['y']] for p in places], atol=0.01)


def test_bags_roundtrip(world):
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore
    cfg, summary = world
    bags = summary.paths['bags']
    assert sorted(p.name for p in bags) == ['night_kidnap_mcap', 'night_kidnap_sqlite3']
    assert (bags[0] / f'{bags[0].name}.mcap').is_file()
    assert (bags[1] / f'{bags[1].name}.db3').is_file()
    counts = []
    for bag in bags:
        with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as r:
            types = {c.topic: c.msgtype for c in r.connections}
            assert types == {'/camera/image_raw/compressed': 'sensor_msgs/msg/CompressedImage',
                             '/camera/image_raw': 'sensor_msgs/msg/Image',
                             '/odom': 'nav_msgs/msg/Odometry',
                             '/gps/fix': 'sensor_msgs/msg/NavSatFix',
                             '/camera/camera_info': 'sensor_msgs/msg/CameraInfo',
                             '/tf': 'tf2_msgs/msg/TFMessage',
                             '/tf_static': 'tf2_msgs/msg/TFMessage'}
            n = {c.topic: c.msgcount for c in r.connections}
            assert n['/tf_static'] == 1
            assert len({v for k, v in n.items() if k != '/tf_static'}) == 1
            counts.append(n['/odom'])
            stamps, xy = [], []
            for conn, t, data in r.messages():
                msg = r.deserialize(data, conn.msgtype)
                if conn.topic == '/camera/image_raw/compressed':
                    assert msg.header.frame_id == 'camera_optical'
                    assert decode_compressed(msg.format, msg.data).shape == (48, 64, 3)
                    stamps.append(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)
                    assert stamps[-1] == t
                elif conn.topic == '/odom':
                    assert (msg.header.frame_id, msg.child_frame_id) == ('map', 'base_link')
                    xy.append([msg.pose.pose.position.x, msg.pose.pose.position.y])
        dt = np.diff(stamps)
        assert np.all(dt > 0) and np.allclose(dt, 1e9 / cfg.rate_hz)
        steps = np.linalg.norm(np.diff(np.array(xy), axis=0), axis=1)
        assert (steps > 10.0).sum() == 1  # the kidnapping
    assert counts[0] == counts[1]
    meta = json.loads((summary.out / 'world.json').read_text())
    assert meta['seed'] == 21 and meta['kidnap'] is True
