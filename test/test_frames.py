"""Odometry at the image time and the camera's mounting offset (vpr_ros.localization.frames)."""
import math

import pytest

from vpr_ros.localization.frames import base_from_camera, OdomBuffer


def test_odometry_is_interpolated_at_the_image_stamp():
    buf = OdomBuffer(horizon_s=2.0, max_extrapolation_s=0.2)
    assert buf.at(1.0) is None
    for k in range(11):  # 10 Hz, 1 m/s along x, turning through +-pi
        buf.add(10.0 + 0.1 * k, (0.1 * k, 0.0, math.pi - 0.05 + 0.01 * k))
    x, y, yaw = buf.at(10.25)
    assert x == pytest.approx(0.25) and y == 0.0
    assert abs(math.atan2(math.sin(yaw - (math.pi - 0.025)), math.cos(yaw - math.pi + 0.025))) \
        < 1e-9  # across the +-pi seam, not through 0
    assert buf.at(11.1) == pytest.approx((1.0, 0.0, math.pi + 0.05 - 2 * math.pi))
    assert buf.at(11.5) is None  # beyond the extrapolation limit
    buf.add(10.5, (9.0, 9.0, 0.0))  # out of order: dropped
    assert buf.at(10.5)[0] == pytest.approx(0.5)
    buf.add(13.0, (3.0, 0.0, 0.0))  # the horizon drops the old poses
    assert buf.at(10.5) is None


def test_base_link_from_a_side_camera():
    # a camera 0.5 m forward, 0.2 m left, looking left (yaw +90 deg) on a robot at (10, 5)
    # heading +x: the camera is at (10.5, 5.2) looking +y
    mount = (0.5, 0.2, math.pi / 2)
    x, y, yaw = base_from_camera((10.5, 5.2, math.pi / 2), mount)
    assert (x, y, yaw) == pytest.approx((10.0, 5.0, 0.0))
    # the same robot heading +y: camera at (9.8, 5.5) looking -x
    x, y, yaw = base_from_camera((9.8, 5.5, math.pi), mount)
    assert (x, y, yaw) == pytest.approx((10.0, 5.0, math.pi / 2))
