"""Camera intrinsics from a bag's CameraInfo: stored by bag maps, used by evaluate --bag."""
import logging
import math

import numpy as np
import pytest

from node_fixtures import build_test_map, place_images
from vpr_ros.io.camera_file import pinhole_from_fov

SIZE = (96, 72)  # width, height
CAMERA = pinhole_from_fov(60.0, *SIZE)


def world_bag(path, images, camera=CAMERA, pitch_deg=0.0):
    """A `vpr-ros world`-style bag (MCAP) of ``images`` 10 m apart, with /camera/camera_info
    when ``camera`` is given, the camera pitched up ``pitch_deg`` (in /tf_static)."""
    from vpr_ros.geo import MapOrigin
    from vpr_ros.world.bagwriter import BagWriter
    from vpr_ros.world.camera import CameraPose
    with BagWriter(path, MapOrigin.from_latlon(45.0, 7.0), 'mcap', gps=False,
                   camera=camera) as bag:
        for i, img in enumerate(images):
            pose = CameraPose(10.0 * i, 0.0, 2.0, 0.0, math.radians(pitch_deg))
            bag.write(10**18 + i * 10**9, pose, img)
    return path


class _Lines(logging.Handler):
    """Collects the records of one logger (ROS's launch plugin may stop their propagation)."""

    def __init__(self, name):
        super().__init__(logging.DEBUG)
        self.lines, self.logger = [], logging.getLogger(name)

    def __enter__(self):
        self.level_was = self.logger.level
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self)
        return self.lines

    def __exit__(self, *exc):
        self.logger.removeHandler(self)
        self.logger.setLevel(self.level_was)

    def emit(self, record):
        self.lines.append(record.getMessage())


def expected_K():
    c = CAMERA
    return np.array([[c['fx'], 0, c['cx']], [0, c['fy'], c['cy']], [0, 0, 1.0]])


@pytest.fixture(scope='module')
def images():
    return place_images(4, size=(SIZE[1], SIZE[0]))


def build_features(bag, tmp_path):
    from vpr_ros.mapstore.bag_source import BagSource
    from vpr_ros.verification.build import build_local_features
    from vpr_ros.verification.store import LocalFeatureStore
    src = BagSource(bag)
    out = tmp_path / 'map'
    out.mkdir()
    summary = build_local_features(src, {k: k for k in range(4)}, out, max_keypoints=64)
    return src, summary, LocalFeatureStore.load(out)


def test_bag_map_stores_the_camera_info_K(tmp_path, images):
    bag = world_bag(tmp_path / 'bag', images, pitch_deg=4.0)
    with _Lines('vpr_ros.io.camera_info') as lines:
        src, summary, store = build_features(bag, tmp_path)
    assert src.camera['topic'] == '/camera/camera_info'
    assert src.frames['intrinsics'] == '/camera/camera_info'
    assert summary['intrinsics'] and len(store) == 4
    for pid in range(4):
        np.testing.assert_allclose(store.intrinsics(pid), expected_K())
    assert any('camera intrinsics from /camera/camera_info' in m for m in lines)
    # the camera tilt of /tf_static, as camera.json's pitch_deg for a VG map
    assert store.header['camera_pitch_deg'] == pytest.approx(4.0, abs=1e-6)
    assert src.mount == pytest.approx((0.0, 0.0, 0.0), abs=1e-9)


def test_bag_without_camera_info_stores_no_K_and_says_so(tmp_path, images):
    bag = world_bag(tmp_path / 'bag', images, camera=None)
    with _Lines('vpr_ros.io.camera_info') as lines:
        src, summary, store = build_features(bag, tmp_path)
    assert src.camera is None and src.frames['intrinsics'] == 'none'
    assert not summary['intrinsics'] and store.intrinsics(0) is None
    assert any('no sensor_msgs/CameraInfo topic beside /camera/image_raw/compressed' in m
               for m in lines)


def test_topic_beside_and_unusable_K():
    from types import SimpleNamespace
    from vpr_ros.io.camera_info import camera_from_msg, camera_info_topic_beside, camera_matrix
    topics = {'/cam/image_raw/compressed': 'sensor_msgs/msg/CompressedImage',
              '/cam/camera_info': 'sensor_msgs/CameraInfo', '/other/camera_info':
              'sensor_msgs/msg/CameraInfo'}
    assert camera_info_topic_beside(topics, '/cam/image_raw/compressed') == '/cam/camera_info'
    assert camera_info_topic_beside(topics, '/front/image') is None
    assert camera_from_msg(SimpleNamespace(k=np.zeros(9), width=96, height=72)) is None
    ros1 = camera_from_msg(SimpleNamespace(K=[50, 0, 47.5, 0, 50, 35.5, 0, 0, 1], width=96,
                                           height=72))
    assert ros1['fx'] == 50 and ros1['cy'] == 35.5
    assert camera_matrix(ros1, (96, 72)) is not None and camera_matrix(ros1, (48, 36)) is None


def test_evaluate_uses_the_bags_K(tmp_path, images, test_model, monkeypatch):
    from vpr_ros.cli import main
    from vpr_ros.localization.localizer import Localizer
    model, size = test_model
    build_test_map(tmp_path / 'map', model, size, images, spacing_m=10.0)
    seen = []
    verify = Localizer.verify

    def spy(self, match, local, query_K=None):
        seen.append(query_K)
        return verify(self, match, local, query_K)
    monkeypatch.setattr(Localizer, 'verify', spy)
    args = ['evaluate', '--map', str(tmp_path / 'map'), '--input-size', *map(str, size),
            '--threads', '1', '--no-plots']
    with_info = world_bag(tmp_path / 'with', images)
    assert main(args + ['--bag', str(with_info), '--out', str(tmp_path / 'r1')]) == 0
    assert len(seen) == 4 and all(np.allclose(k, expected_K()) for k in seen)
    seen.clear()
    without = world_bag(tmp_path / 'without', images, camera=None)
    assert main(args + ['--bag', str(without), '--out', str(tmp_path / 'r2')]) == 0
    assert len(seen) == 4 and all(k is None for k in seen)  # the map camera's, in verify
