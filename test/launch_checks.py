"""Shared by the launch_testing tests of launch/*.launch.py (one test module per launch file)."""
from __future__ import annotations

import tempfile
from pathlib import Path

SPACING = 30.0


def launch_testing_or_skip():
    """The launch_testing module; at a test module's import, a skip on a machine without the
    ROS 2 launch system, a failure where ../shared/ros2-cli says it must exist (CI)."""
    import pytest
    try:
        import launch_testing
        import launch_testing.actions
        import launch_testing.asserts
        return launch_testing
    except ImportError:
        from ros2_tools import require_ros2
        try:
            require_ros2()
        except pytest.skip.Exception as exc:
            pytest.skip(str(exc), allow_module_level=True)
        raise


def test_world(seed: int) -> dict:
    """A 4-place map in a temporary folder (launch_testing builds it before the launch)."""
    from conftest import TEST_INPUT, TEST_MODEL
    from node_fixtures import build_test_map, place_images
    tmp = Path(tempfile.mkdtemp(prefix='vpr_launch_test_'))
    images = place_images(4, seed=seed)
    build_test_map(tmp / 'map', TEST_MODEL, TEST_INPUT, images, spacing_m=SPACING)
    return {'map': str(tmp / 'map'), 'images': images, 'tmp': tmp}


def include(name: str, **arguments):
    """IncludeLaunchDescription of launch/<name> from this source tree."""
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from ros_harness import REPO
    return IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(REPO / 'launch' / name)),
        launch_arguments={k: str(v) for k, v in arguments.items()}.items())


def localize_once(client, namespace: str, image, timeout: float = 240.0):
    """Publish ``image`` to the namespaced camera until a pose prior comes back; return it.
    (Frames sent while the encoder still warms up are dropped, so resend each few seconds.)"""
    import time
    from geometry_msgs.msg import PoseWithCovarianceStamped
    from sensor_msgs.msg import Image
    from vpr_ros.nodes.conversions import rgb_to_image
    priors = client.collect(PoseWithCovarianceStamped, f'/{namespace}/vpr/pose_prior')
    pub = client.node.create_publisher(Image, f'/{namespace}/camera/image_raw', 10)
    deadline = time.monotonic() + timeout
    while not priors and time.monotonic() < deadline:
        if pub.get_subscription_count() > 0:
            pub.publish(rgb_to_image(image, 'rgb8'))
        for _ in range(30):
            if priors:
                break
            time.sleep(0.1)
    if not priors:
        raise AssertionError(f'no pose prior on /{namespace}/vpr/pose_prior in {timeout:.0f} s')
    return priors[0]
