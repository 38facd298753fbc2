"""Bag reading: topic detection, pose matching, storages, damaged bags."""
import logging
import math
import shutil

import numpy as np
import pytest

from vpr_ros.io.bag_poses import KeyframeConfig, KeyframeSelector, PoseSample
from vpr_ros.io.bag_writer import write_bag
from vpr_ros.io.bags import BagError, BagReader


def _images(n, t0=100.0, dt=0.5, shape=(48, 64, 3)):
    """Smooth gradients (JPEG-friendly) with a little noise, different per frame."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    out = []
    for i in range(n):
        base = np.stack([xx * 3 + i * 7, yy * 4, (xx + yy + 20 * i)], -1) % 200
        out.append((t0 + i * dt, (base + rng.integers(0, 20, shape)).astype(np.uint8)))
    return out


def _poses(n, t0=100.0, dt=0.1):
    return [(t0 + i * dt, i * 0.3, 0.0, 0.01 * i) for i in range(n)]


@pytest.mark.parametrize('storage,compressed,pose_type', [
    ('mcap', False, 'odometry'), ('sqlite3', True, 'pose_stamped')])
def test_frames_with_matched_poses(tmp_path, storage, compressed, pose_type):
    imgs = _images(8)
    bag = write_bag(tmp_path / 'bag', imgs, _poses(40), storage=storage,
                    compressed=compressed, pose_type=pose_type)
    with BagReader(bag) as r:
        assert r.image_topic == '/camera/image_raw' and r.pose_topic == '/odom'
        assert '/chatter' in r.topics  # extra topics are listed, then ignored
        frames = list(r.frames())
        assert len(r.pose_track()) == 40 and r.warnings == 0
    assert len(frames) == 8 and frames[2].stamp == pytest.approx(101.0)
    assert frames[2].pose.x == pytest.approx(3.0, abs=1e-6)
    assert frames[2].pose.yaw == pytest.approx(0.1, abs=1e-6)
    if compressed:
        assert np.abs(frames[0].rgb.astype(int) - imgs[0][1]).mean() < 8  # JPEG
    else:
        np.testing.assert_array_equal(frames[0].rgb, imgs[0][1])


def test_pose_interpolation_and_tolerance(tmp_path):
    bag = write_bag(tmp_path / 'bag', [(100.05, _images(1)[0][1]), (105.0, _images(1)[0][1])],
                    [(100.0, 0.0, 0.0, 0.0), (100.1, 1.0, 0.0, 0.2)])
    with BagReader(bag, tolerance_s=0.1) as r:
        f = list(r.frames())
        assert f[0].pose.x == pytest.approx(0.5) and f[0].pose.yaw == pytest.approx(0.1)
        assert f[1].pose is None and r.missing_poses == 1


def test_no_image_topic_lists_topics(tmp_path):
    bag = write_bag(tmp_path / 'bag', [], _poses(5))
    with pytest.raises(BagError, match=r'no image topic.*/odom \[nav_msgs/msg/Odometry\]'):
        BagReader(bag)


def test_ambiguous_and_named_topics(tmp_path):
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import get_typestore, Stores
    bag = write_bag(tmp_path / 'bag', _images(2), _poses(5), storage='sqlite3')
    with pytest.raises(BagError, match='no topic'):
        BagReader(bag, image_topic='/nope')
    with pytest.raises(BagError, match='not a image type'):
        BagReader(bag, image_topic='/chatter')
    ts = get_typestore(Stores.ROS2_HUMBLE)
    two = tmp_path / 'two'
    with Writer(two, version=9) as w:
        for t in ('/cam_a', '/cam_b'):
            w.add_connection(t, 'sensor_msgs/msg/Image', typestore=ts)
    with pytest.raises(BagError, match='several image topics.*/cam_a.*/cam_b'):
        BagReader(two, require_pose=False)
    assert BagReader(two, image_topic='/cam_b', require_pose=False).image_topic == '/cam_b'


def test_truncated_mcap_warns_and_keeps_what_it_read(tmp_path, caplog):
    # ~3.4 MB of raw images -> several 1 MiB MCAP chunks; cut inside the last ones
    bag = write_bag(tmp_path / 'bag', _images(60, shape=(120, 160, 3)), _poses(300))
    cut = tmp_path / 'cut'
    shutil.copytree(bag, cut)
    f = next(cut.glob('*.mcap'))
    f.write_bytes(f.read_bytes()[:int(f.stat().st_size * 0.7)])
    with caplog.at_level(logging.WARNING):
        with BagReader(cut) as r:
            frames = list(r.frames())
    assert 0 < len(frames) < 60 and r.warnings >= 2
    assert all(fr.pose is not None for fr in frames)
    assert 'truncated' in caplog.text


def test_navsatfix_track_in_map_frame(tmp_path):
    lat0, lon0 = 45.0, 9.0
    fixes = [(100.0 + i, lat0 + i * 1e-5, lon0, 0.0) for i in range(10)]  # north ~1.1 m/s
    bag = write_bag(tmp_path / 'bag', _images(3, t0=101.0, dt=2.0), fixes,
                    pose_type='navsatfix', pose_topic='/fix')
    with BagReader(bag, tolerance_s=0.6) as r:
        frames = list(r.frames())
        assert r.origin is not None
    assert frames[1].pose.y == pytest.approx(3 * 1.111, rel=0.02)
    assert abs(frames[1].pose.x) < 0.05
    assert frames[1].pose.yaw == pytest.approx(math.pi / 2, abs=0.05)
    assert frames[1].pose.lat == pytest.approx(lat0 + 3e-5)


def test_keyframe_selector():
    sel = KeyframeSelector(KeyframeConfig(dist_m=2.0, angle_deg=15.0))
    picks = [sel(PoseSample(0.0, x, 0.0, 0.0, yaw)) for x, yaw in
             [(0, 0), (1, 0), (2.1, 0), (2.2, 0.3), (2.3, 0.31)]]
    assert picks == [True, False, True, True, False]


def test_unreadable_and_out_of_order_messages_warn(tmp_path, caplog):
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import get_typestore, Stores
    ts = get_typestore(Stores.ROS2_HUMBLE)
    T = ts.types
    good = write_bag(tmp_path / 'good', _images(2), [], extra_topic=False)
    with BagReader(good, require_pose=False) as r:
        raw = [ts.serialize_cdr(r._reader.deserialize(d, m), m)
               for m, _t, d in r._reader.messages('/camera/image_raw')]
    bag = tmp_path / 'bag'
    with Writer(bag, version=9) as w:
        ci = w.add_connection('/cam', 'sensor_msgs/msg/Image', typestore=ts)
        cp = w.add_connection('/pose', 'geometry_msgs/msg/PoseStamped', typestore=ts)
        # header stamps out of order, log times in order
        for j, (t, x) in enumerate(((100.0, 0.0), (100.2, 2.0), (100.1, 1.0))):
            sec, ns = int(t), int(round((t % 1) * 1e9))
            msg = T['geometry_msgs/msg/PoseStamped'](
                header=T['std_msgs/msg/Header'](
                    stamp=T['builtin_interfaces/msg/Time'](sec=sec, nanosec=ns), frame_id='map'),
                pose=T['geometry_msgs/msg/Pose'](
                    position=T['geometry_msgs/msg/Point'](x=x, y=0.0, z=0.0),
                    orientation=T['geometry_msgs/msg/Quaternion'](x=0.0, y=0.0, z=0.0, w=1.0)))
            w.write(cp, int((100.0 + 0.01 * j) * 1e9), ts.serialize_cdr(msg, cp.msgtype))
        w.write(ci, int(100.0e9), raw[0])
        w.write(ci, int(100.05e9), b'\x00\x01\x00\x00garbage')
        w.write(ci, int(100.1e9), raw[1])
    with caplog.at_level(logging.WARNING):
        with BagReader(bag) as r:
            frames = list(r.frames())
            assert [round(p.x, 3) for p in (s for s in r.pose_track().samples)] == [0, 1, 2]
    assert len(frames) == 2 and r.warnings >= 2
    assert 'unreadable' in caplog.text and 'out of time order' in caplog.text
