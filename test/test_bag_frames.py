"""Frames of a bag map: pose frame check, anchoring, camera extrinsics from /tf_static."""
import math

import numpy as np
import pytest

from vpr_ros.io.bag_poses import (is_optical, KeyframeConfig, planar_mount, quat_matrix,
                                  StaticTransforms)
from vpr_ros.io.bag_writer import write_bag
from vpr_ros.mapstore.bag_source import BagSource
from vpr_ros.mapstore.sources import SourceError

OPTICAL = (-0.5, 0.5, -0.5, 0.5)  # camera_link (x fwd, z up) -> optical (z fwd, y down)
EVERY = KeyframeConfig(dist_m=0.0, angle_deg=0.0)


def _img(i):
    return np.random.default_rng(i).integers(0, 255, (16, 20, 3), dtype=np.uint8)


def _bag(tmp_path, yaw=0.0, **kw):
    imgs = [(100.0 + i, _img(i)) for i in range(4)]
    poses = [(100.0 + i, float(i), 0.0, yaw) for i in range(4)]
    return write_bag(tmp_path / 'bag', imgs, poses, storage='sqlite3', **kw)


def _xyyaw(items):
    return [v for it in items for v in (it.place.x, it.place.y, it.place.yaw)]


def _flat(rows):
    return [float(v) for r in rows for v in r]


def test_map_frame_track_unchanged_and_summarised(tmp_path):
    src = BagSource(_bag(tmp_path), keyframes=EVERY)
    assert _xyyaw(src) == pytest.approx(_flat((i, 0, 0) for i in range(4)))
    assert src.frames['pose_frame'] == 'map' and 'no /tf_static' in src.frames['applied']
    assert 'camera_mount' not in src.frames


def test_odom_track_refused_with_how_to_proceed(tmp_path):
    bag = _bag(tmp_path, pose_frame='odom')
    with pytest.raises(SourceError) as e:
        BagSource(bag)
    msg = str(e.value)
    assert "frame 'odom', not the map frame 'map'" in msg
    assert '--anchor X Y YAW' in msg and '--map-frame odom' in msg
    # a map in the odom frame is allowed when asked for
    assert len(list(BagSource(bag, map_frame='odom', keyframes=EVERY))) == 4


def test_anchor_transforms_every_pose(tmp_path):
    bag = _bag(tmp_path, pose_frame='odom')
    # strings, as the CLI passes tuple fields
    src = BagSource(bag, anchor=('10', '5', str(math.pi / 2)), keyframes=EVERY)
    assert _xyyaw(src) == pytest.approx(_flat((10, 5 + i, math.pi / 2) for i in range(4)))
    assert src.frames['anchor'] == pytest.approx([10, 5, math.pi / 2])
    assert "frame 'odom' anchored in 'map'" in src.frames['applied']
    with pytest.raises(SourceError, match='3 finite numbers'):
        BagSource(bag, anchor=(1.0, 2.0))


def test_tf_static_chain_to_optical_frame_gives_camera_poses(tmp_path):
    half = math.sqrt(0.5)
    tfs = [('base_link', 'camera_link', (0.5, 0.2, 1.0), (0.0, 0.0, half, half)),  # looks left
           ('camera_link', 'camera_optical', (0.0, 0.0, 0.0), OPTICAL)]
    bag = _bag(tmp_path, yaw=math.pi / 2, image_frame='camera_optical', tf_static=tfs)
    src = BagSource(bag, keyframes=EVERY)
    assert src.frames['camera_mount'] == pytest.approx([0.5, 0.2, math.pi / 2])
    assert 'base_link -> camera_link -> camera_optical' in src.frames['camera_mount_from']
    # base_link at (i, 0) facing +y: the camera is 0.5 m ahead (+y), 0.2 m left (-x), facing -x
    got = _xyyaw(src)
    for i, (x, y, yaw) in enumerate(zip(got[0::3], got[1::3], got[2::3])):
        assert (x, y) == pytest.approx((i - 0.2, 0.5))
        assert abs(math.atan2(math.sin(yaw - math.pi), math.cos(yaw - math.pi))) < 1e-9
    assert src.warnings == 0
    # switched off, or given by hand
    off = BagSource(bag, extrinsics='none', keyframes=EVERY)
    assert _xyyaw(off) == pytest.approx(_flat((i, 0, math.pi / 2) for i in range(4)))
    hand = BagSource(bag, camera_mount=(1.0, 0.0, 0.0), keyframes=EVERY)
    assert _xyyaw(hand) == pytest.approx(_flat((i, 1, math.pi / 2) for i in range(4)))
    assert 'by hand' in hand.frames['camera_mount_from']


def test_tf_static_without_chain_warns(tmp_path):
    tfs = [('base_link', 'lidar', (1.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))]
    bag = _bag(tmp_path, image_frame='camera_optical', tf_static=tfs)
    src = BagSource(bag, keyframes=EVERY)
    assert src.mount is None and src.warnings == 1
    assert "no /tf_static chain 'base_link' -> 'camera_optical'" in src.frames['applied']


def test_optical_detection_and_planar_mount():
    m = np.eye(4)
    m[:3, :3] = quat_matrix(*OPTICAL)
    m[:3, 3] = (0.3, -0.1, 1.2)
    assert is_optical('cam', m)  # by its axes: y down, z horizontal
    assert not is_optical('camera_link', np.eye(4))
    assert planar_mount(m, True) == pytest.approx((0.3, -0.1, 0.0))
    # read as a body-convention frame (x forward) it would face right: the convention matters
    assert planar_mount(m, False)[2] == pytest.approx(-math.pi / 2)
    down = np.eye(4)
    down[:3, :3] = quat_matrix(0.0, math.sqrt(0.5), 0.0, math.sqrt(0.5))  # x axis points down
    with pytest.raises(ValueError, match='straight up or down'):
        planar_mount(down, False)
    tree = StaticTransforms()
    tree.add('base_link', 'mast', np.eye(4))
    tree.add('cam', 'mast', np.linalg.inv(m))  # an edge given the other way round
    found, chain = tree.lookup('base_link', 'cam')
    assert chain == ['base_link', 'mast', 'cam'] and np.allclose(found, m)
    assert tree.lookup('base_link', 'nowhere') is None


def test_build_config_fields_reach_the_source(tmp_path):
    from vpr_ros.mapstore.build import BuildConfig, open_source
    bag = _bag(tmp_path, pose_frame='odom')
    cfg = BuildConfig(source='bag', input=str(bag), anchor=['1', '2', '0'],
                      camera_extrinsics='none')
    src = open_source(cfg)
    assert src.anchor == (1.0, 2.0, 0.0) and src.frames['map_frame'] == 'map'
    with pytest.raises(SourceError, match="frame 'odom'"):
        open_source(BuildConfig(source='bag', input=str(bag)))
