"""launch_testing test of launch/localize.launch.py: run by the ROS 2 launch system, a frame
published to the namespaced camera comes back as the right pose prior, and every node exits
cleanly at shutdown (respawn on, warn log level: the arguments are accepted)."""
import unittest

import pytest

from launch_checks import launch_testing_or_skip

launch_testing = launch_testing_or_skip()
from launch import LaunchDescription  # noqa: E402

from launch_checks import include, localize_once, SPACING, test_world  # noqa: E402
from ros_harness import RosClient  # noqa: E402

NAMESPACE = 'lt_localize'


@pytest.mark.launch_test
def generate_test_description():
    world = test_world(seed=11)
    return LaunchDescription([
        include('localize.launch.py', map=world['map'], namespace=NAMESPACE,
                use_respawn='true', log_level='warn'),
        launch_testing.actions.ReadyToTest()]), {'world': world}


class TestLocalizeLaunch(unittest.TestCase):

    def test_frame_is_localized(self, world):
        client = RosClient('launch_test_localize')
        try:
            prior = localize_once(client, NAMESPACE, world['images'][2])
        finally:
            client.close()
        self.assertEqual(prior.header.frame_id, 'map')
        self.assertAlmostEqual(prior.pose.pose.position.x, 2 * SPACING, places=3)


@launch_testing.post_shutdown_test()
class TestLocalizeShutdown(unittest.TestCase):

    def test_every_node_exits_cleanly(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)
