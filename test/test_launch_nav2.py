"""launch_testing test of launch/nav2_localize.launch.py on a machine without Nav2 and
robot_localization: vpr_ros starts alone, its managed nodes are brought up by vpr_ros's own
lifecycle driver, and a frame is localized; every process exits cleanly at shutdown."""
import unittest

import pytest

from launch_checks import launch_testing_or_skip

launch_testing = launch_testing_or_skip()
from launch import LaunchDescription  # noqa: E402

from lifecycle_msgs.srv import GetState  # noqa: E402

from launch_checks import include, localize_once, SPACING, test_world  # noqa: E402
from ros_harness import RosClient  # noqa: E402

NAMESPACE = 'lt_nav2'


@pytest.mark.launch_test
def generate_test_description():
    world = test_world(seed=12)
    # with_ekf asks for robot_localization, which is not installed here: said, not fatal
    return LaunchDescription([
        include('nav2_localize.launch.py', map=world['map'], namespace=NAMESPACE,
                with_ekf='true'),
        launch_testing.actions.ReadyToTest()]), {'world': world}


class TestNav2LocalizeLaunch(unittest.TestCase):

    def test_managed_nodes_come_up_and_localize(self, world):
        client = RosClient('launch_test_nav2')
        try:
            prior = localize_once(client, NAMESPACE, world['images'][3])
            for name in ('query_encoder', 'gallery_server', 'matcher'):
                state = client.call(GetState, f'/{NAMESPACE}/{name}/get_state',
                                    GetState.Request())
                self.assertEqual(state.current_state.label, 'active', name)
        finally:
            client.close()
        # the temporal filter (on by default) smooths the place's position a little
        self.assertLess(abs(prior.pose.pose.position.x - 3 * SPACING), 1.0)


@launch_testing.post_shutdown_test()
class TestNav2LocalizeShutdown(unittest.TestCase):

    def test_every_process_exits_cleanly(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)
