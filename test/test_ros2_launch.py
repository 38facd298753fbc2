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
