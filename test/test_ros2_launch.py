"""`ros2 launch vpr_ros localize.launch.py` from the full install, as a ROS user runs it: frames
localized, parameters from the YAML, runtime changes refused, two robots side by side under
namespaces, and the same live graph as `vpr-ros run localize`."""
import math
import numpy as np
import pytest
import yaml
from geometry_msgs.msg import PoseWithCovarianceStamped
from sensor_msgs.msg import Image

from node_fixtures import build_test_map, place_images
from ros2_tools import graph_snapshot, require_ros2, ros2, Ros2Process
from ros_harness import RosClient, wait_for
from vpr_ros.nodes.conversions import rgb_to_image

SPACING = 30.0
ROBOTS = ('robot1', 'robot2')


@pytest.fixture(scope='module')
def world(tmp_path_factory, test_model):
    require_ros2()
    model, size = test_model
    tmp = tmp_path_factory.mktemp('ros2launch')
    images = place_images(6, size=(72, 96), seed=3)
    build_test_map(tmp / 'map', model, size, images, spacing_m=SPACING)
    # no model set: the query_encoder takes the map's own encoder and input size
    params = {'/**/matcher': {'ros__parameters': {'top_k': 3, 'use_filter': False}},
              '/**/query_encoder': {'ros__parameters': {'image_qos': 'reliable'}}}
    (tmp / 'params.yaml').write_text(yaml.safe_dump(params))
    return {'tmp': tmp, 'images': images, 'map': str(tmp / 'map'),
            'params': str(tmp / 'params.yaml')}


def launch(world, namespace):
    return Ros2Process(['launch', 'vpr_ros', 'localize.launch.py', f'map:={world["map"]}',
                        f'params_file:={world["params"]}', f'namespace:={namespace}'],
                       world['tmp'] / f'launch_{namespace}.log')


def ready(proc, namespace, client):
    wait_for(lambda: 'ready' in proc.log() or not proc.alive(), 240,
             what=f'{namespace} query_encoder')
    assert proc.alive(), proc.log()
    wait_for(lambda: client.node.count_subscribers(f'/{namespace}/camera/image_raw') > 0
             and client.node.count_publishers(f'/{namespace}/vpr/pose_prior') > 0, 60,
             what=f'{namespace} discovery')


def test_two_namespaced_launches_localize_their_own_frames(world):
    client = RosClient('ros2_launch_test')
    procs = {ns: launch(world, ns) for ns in ROBOTS}
    try:
        priors = {ns: client.collect(PoseWithCovarianceStamped, f'/{ns}/vpr/pose_prior')
                  for ns in ROBOTS}
        pubs = {ns: client.node.create_publisher(Image, f'/{ns}/camera/image_raw', 10)
                for ns in ROBOTS}
        for ns in ROBOTS:
            ready(procs[ns], ns, client)
        place = {'robot1': 1, 'robot2': 4}
        for ns in ROBOTS:
            pubs[ns].publish(rgb_to_image(world['images'][place[ns]], 'rgb8'))
        for ns in ROBOTS:
            wait_for(lambda: priors[ns], 60, what=f'{ns} pose prior')
        for ns in ROBOTS:  # each robot got exactly its own frame's place
            assert len(priors[ns]) == 1, ns
            p = priors[ns][0]
            assert p.header.frame_id == 'map'
            assert p.pose.pose.position.x == pytest.approx(place[ns] * SPACING, abs=1e-3)
            cov = np.asarray(p.pose.covariance).reshape(6, 6)
            assert math.isfinite(cov[0, 0]) and cov[0, 0] > 0
        # the YAML's values (keyed /**/matcher) reach the namespaced nodes
        assert 'Integer value is: 3' in ros2('param', 'get', '--no-daemon', '--timeout', '10',
                                             '/robot1/matcher', 'top_k')
        assert 'String value is: efficientnet_lite0_gem' not in ros2(
            'param', 'get', '--no-daemon', '--timeout', '10', '/robot1/query_encoder', 'model')
        # a setting read at start-up is refused at runtime, not silently accepted ...
        out = ros2('param', 'set', '--no-daemon', '--timeout', '10', '/robot1/matcher',
                   'top_k', '7', check=False)
        assert 'Setting parameter failed' in out and 'read when the node starts' in out
        assert 'Integer value is: 3' in ros2('param', 'get', '--no-daemon', '--timeout', '10',
                                             '/robot1/matcher', 'top_k')
        # ... while gallery_server's map_path is applied at runtime
        out = ros2('param', 'set', '--no-daemon', '--timeout', '10', '/robot1/gallery_server',
                   'map_path', world['map'])
        assert 'Set parameter successful' in out
        launched = graph_snapshot(client, 'robot2')
        assert set(launched) == {'query_encoder', 'gallery_server', 'matcher'}
        assert procs['robot2'].stop() == 0, procs['robot2'].log()
        # `vpr-ros run` (the installed executable) starts the same live graph
        run = Ros2Process(['run', 'vpr_ros', 'vpr-ros', 'run', 'localize', '--map', world['map'],
                           '--params-file', world['params'], '--namespace', '/robot2'],
                          world['tmp'] / 'run_robot2.log')
        try:
            wait_for(lambda: 'ready' in run.log(), 240, what='vpr-ros run robot2')
            wait_for(lambda: len(graph_snapshot(client, 'robot2')) == 3, 60,
                     what='vpr-ros run graph')
            assert graph_snapshot(client, 'robot2') == launched
        finally:
            assert run.stop() == 0, run.log()
    finally:
        codes = {ns: proc.stop() for ns, proc in procs.items()}
        client.close()
    assert codes['robot1'] == 0, procs['robot1'].log()  # Ctrl-C: every node exits cleanly
    assert 'process has died' not in procs['robot1'].log()


def test_nav2_launch_refuses_nav2_without_an_occupancy_map(tmp_path):
    require_ros2()
    out = ros2('launch', 'vpr_ros', 'nav2_localize.launch.py', 'with_nav2:=true',
               check=False, cwd=tmp_path)
    assert 'with_nav2:=true needs nav2_map:=' in out, out
    assert 'process started' not in out  # refused before anything starts


def test_nav2_launch_gives_map_to_odom_to_one_owner(tmp_path, monkeypatch):
    """With Nav2 and robot_localization present (faked package shares), AMCL owns map->odom
    and the EKF runs with publish_tf false; the user's YAML output_mode is not overridden."""
    require_ros2()
    import importlib.util
    from launch import LaunchContext
    from launch.actions import IncludeLaunchDescription, LogInfo
    from launch_ros.actions import Node
    from ros_harness import REPO
    spec = importlib.util.spec_from_file_location('nav2_launch',
                                                  REPO / 'launch' / 'nav2_localize.launch.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for pkg in ('nav2_bringup', 'robot_localization', 'nav2_lifecycle_manager'):
        (tmp_path / pkg / 'launch').mkdir(parents=True)
    (tmp_path / 'nav2_bringup' / 'launch' / 'localization_launch.py').write_text(
        'from launch import LaunchDescription\n\n\n'
        'def generate_launch_description():\n    return LaunchDescription([])\n')
    monkeypatch.setattr(mod, '_share', lambda p: str(REPO) if p == 'vpr_ros'
                        else str(tmp_path / p))
    context = LaunchContext()
    for name, (default, _) in mod.ARGUMENTS.items():
        context.launch_configurations[name] = default or ''
    context.launch_configurations.update(params_file=str(REPO / 'config' / 'localize.yaml'),
                                         with_nav2='true', with_ekf='true',
                                         nav2_map=str(tmp_path / 'occ.yaml'), map='/maps/m')
    actions = mod._setup(context)
    ekf = [a for a in actions if isinstance(a, Node) and a.node_executable == 'ekf_node']
    assert len(ekf) == 1
    assert overrides_of(ekf[0])['publish_tf'] is False
    assert any(isinstance(a, IncludeLaunchDescription) for a in actions)  # AMCL
    logs = ' '.join(t.text for a in actions if isinstance(a, LogInfo) for t in a.msg)
    assert 'publish_tf false' in logs
    matcher = next(a for a in actions if isinstance(a, Node) and a.node_executable == 'matcher')
    assert 'output_mode' not in overrides_of(matcher) and 'map_path' in overrides_of(matcher)
    assert overrides_of(matcher)['set_pose_topic'].split()[0] == 'set_pose'  # to the EKF


def overrides_of(node) -> dict:
    """The dict parameters of a launch_ros Node (after launch_ros normalised them)."""
    out = {}
    for p in node._Node__parameters:
        if isinstance(p, dict):
            out.update({text(k): text(v) if isinstance(v, tuple) else v for k, v in p.items()})
    return out


def text(substitutions) -> str:
    return ''.join(s.text for s in substitutions)
