"""Fleet map building: three robots add 1,000 keyframes each at once, over DDS."""
import subprocess
import sys

import numpy as np
from visualization_msgs.msg import MarkerArray

from fleet_robot import keyframe_descriptor
from node_fixtures import write_params
from ros_harness import NodeProcess, python_env, REPO, RosClient, wait_for
from vpr_ros.nodes.qos import latched_qos
from vpr_ros.srv import GetMapInfo, QueryMap

DIM, ENCODER, PER_ROBOT, BATCH = 32, 'fleet_test_encoder', 1000, 50


def test_three_robots_concurrently_then_restart(tmp_path, test_model):
    from vpr_ros.mapstore import MapStore
    MapStore.create(tmp_path / 'map', encoder=ENCODER, dim=DIM, dtype='float32').close()
    params = write_params(tmp_path / 'p.yaml', *test_model, tmp_path / 'map',
                          namespace='/fleet')
    server = NodeProcess('gallery_server', params, tmp_path, namespace='/fleet')
    env = python_env()
    env['ROS_NAMESPACE'] = '/fleet'
    robots = [subprocess.Popen(
        [sys.executable, str(REPO / 'test' / 'fleet_robot.py'), str(r), str(PER_ROBOT),
         str(BATCH), str(DIM), ENCODER, '--ros-args', '-r', '__ns:=/fleet'],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for r in range(3)]
    outputs = [p.communicate(timeout=600)[0] for p in robots]
    assert [p.returncode for p in robots] == [0, 0, 0], outputs
    server.stop()

    server = NodeProcess('gallery_server', params, tmp_path, name='gallery_server',
                         namespace='/fleet')
    client = RosClient('fleet_checker')
    markers = client.collect(MarkerArray, '/fleet/vpr/map_markers', latched_qos())
    try:
        info = client.call(GetMapInfo, '/fleet/vpr/get_map_info', GetMapInfo.Request()).info
        assert info.num_places == 3 * PER_ROBOT
        assert sorted(zip(info.robot_ids, info.places_per_robot)) == \
            [(f'robot{r}', PER_ROBOT) for r in range(3)]
        rng = np.random.default_rng(0)
        for r, i in zip(rng.integers(0, 3, 6), rng.integers(0, PER_ROBOT, 6)):
            res = client.call(QueryMap, '/fleet/vpr/query_map', QueryMap.Request(
                descriptor=keyframe_descriptor(int(r), int(i), DIM).tolist(), k=1))
            top = res.candidates[0]
            assert top.robot_id == f'robot{r}' and top.score > 0.999
            assert top.pose.position.x == r * 10_000 + i * 5
        wait_for(lambda: markers, 20, what='map markers')
        points = sum(len(m.points) for m in markers[-1].markers)
        assert points == 3 * PER_ROBOT
    finally:
        client.close()
        server.stop()
    with MapStore.open(tmp_path / 'map') as store:
        xs = store.positions(np.arange(store.num_places))[:, 0]
    assert len(np.unique(xs)) == 3 * PER_ROBOT  # none duplicated
