"""Map faults over DDS: a served data file truncated on disk (used to kill gallery_server with
SIGBUS), add_places retried after a lost answer (used to add the places twice), and a map
merged into itself (used to double it)."""
import math

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose

from node_fixtures import build_test_map, place_images, write_params
from ros_harness import NodeProcess, RosClient, wait_for
from vpr_ros.msg import Descriptor, Keyframe, PlaceMatch
from vpr_ros.srv import AddPlaces, GetMapInfo, MergeMap, QueryMap, SaveMap


@pytest.fixture(scope='module')
def graph(tmp_path_factory, test_model):
    model, size = test_model
    tmp = tmp_path_factory.mktemp('map_faults')
    descs = build_test_map(tmp / 'maps' / 'map', model, size, place_images(4, seed=5))
    params = write_params(tmp / 'params.yaml', model, size, tmp / 'maps' / 'map')
    nodes = {exe: NodeProcess(exe, params, tmp) for exe in ('gallery_server', 'matcher')}
    client = RosClient('map_faults_client')
    g = {'tmp': tmp, 'map': tmp / 'maps' / 'map', 'descs': descs, 'model': model,
         'params': params, 'nodes': nodes, 'client': client,
         'matches': client.collect(PlaceMatch, 'vpr/match'),
         'desc_pub': client.node.create_publisher(Descriptor, 'vpr/descriptor', 10)}
    wait_for(lambda: 'matching against' in nodes['matcher'].log(), 120, what='matcher map')
    yield g
    client.close()
    for n in nodes.values():
        n.stop()


def _keyframes(g, n, x0, seed):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        d = rng.standard_normal(g['descs'].shape[1]).astype(np.float32)
        kf = Keyframe(robot_id='r1', session='s1', encoder=g['model'],
                      descriptor=(d / np.linalg.norm(d)).tolist(), latitude=math.nan,
                      longitude=math.nan)
        kf.header.frame_id = 'map'
        kf.pose = Pose()
        kf.pose.position.x = x0 + 3.0 * i
        kf.pose.orientation.w = 1.0
        out.append(kf)
    return out


def _add(g, keyframes, request_id=''):
    return g['client'].call(AddPlaces, 'vpr/add_places', AddPlaces.Request(
        keyframes=keyframes, request_id=request_id))


def _info(g):
    return g['client'].call(GetMapInfo, 'vpr/get_map_info', GetMapInfo.Request())


def _query(g, i):
    return g['client'].call(QueryMap, 'vpr/query_map', QueryMap.Request(
        descriptor=g['descs'][i].tolist(), k=2))


def _matched(g, sec, i):
    msg = Descriptor(encoder=g['model'], descriptor=g['descs'][i].tolist())
    msg.header.stamp = Time(sec=sec)
    wait_for(lambda: g['desc_pub'].publish(msg) or any(
        m.header.stamp.sec == sec and m.candidates[0].place_id == i for m in g['matches']),
        20, period=0.3, what=f'match of place {i}')


def test_truncated_served_file_is_refused_and_restore_serves_again(graph):
    g, server, matcher = graph, graph['nodes']['gallery_server'], graph['nodes']['matcher']
    version = _info(g).info.version
    path = g['map'] / next(p.name for p in g['map'].glob('descriptors-v*.npy'))
    original = path.read_bytes()
    with open(path, 'r+b') as f:
        f.truncate(200)
    for resp in (_add(g, _keyframes(g, 3, 900.0, 1)), _query(g, 1), _info(g),
                 g['client'].call(SaveMap, 'vpr/save_map', SaveMap.Request())):
        assert not resp.success and 'truncated' in resp.message, resp.message
        assert 'nothing done' in resp.message
    assert server.alive() and 'truncated' in server.log()
    wait_for(lambda: 'truncated' in matcher.log(), 20, what='the matcher reports the damage')
    frame = Descriptor(encoder=g['model'], descriptor=g['descs'][2].tolist())
    frame.header.stamp = Time(sec=300)
    wait_for(lambda: g['desc_pub'].publish(frame) or 'dropped' in matcher.log() or any(
        m.header.stamp.sec == 300 for m in g['matches']) or not matcher.alive(), 20,
        period=0.3, what='the matcher handles a frame')  # served from memory or dropped
    assert matcher.alive(), matcher.log()[-3000:]
    path.write_bytes(original)  # restored: served again, nothing was lost
    assert _info(g).info.version == version
    resp = _add(g, _keyframes(g, 3, 900.0, 1))
    assert resp.success and resp.num_added == 3, resp.message
    assert _query(g, 1).candidates[0].place_id == 1
    _matched(g, 301, 3)
    assert server.alive() and matcher.alive()


def test_retried_add_with_request_id_adds_once_even_across_a_restart(graph):
    g = graph
    before = _info(g).info.num_places
    batch = _keyframes(g, 35, 2000.0, 2)
    first = _add(g, batch, 'robot1-batch-0042')
    assert first.success and first.num_added == 35, first.message
    retry = _add(g, batch, 'robot1-batch-0042')  # the first answer was "lost"
    assert retry.success and 'already applied' in retry.message
    assert list(retry.place_ids) == list(first.place_ids) and retry.num_added == 35
    assert _info(g).info.num_places == before + 35
    g['nodes']['gallery_server'].stop()
    g['nodes']['gallery_server'] = NodeProcess('gallery_server', g['params'], g['tmp'],
                                               name='gallery_server')
    wait_for(lambda: _info(g).success, 60, what='gallery_server back')
    again = _add(g, batch, 'robot1-batch-0042')
    assert again.success and list(again.place_ids) == list(first.place_ids)
    assert _info(g).info.num_places == before + 35
    # clients that send no request_id behave as before: every call adds
    for _ in range(2):
        assert _add(g, _keyframes(g, 1, 5000.0, 3)).num_added == 1
    assert _info(g).info.num_places == before + 37
    long_key = _add(g, batch, 'k' * 1000)
    assert not long_key.success and 'request_id' in long_key.message


def test_merging_the_map_into_itself_is_refused(graph):
    g = graph
    info = _info(g).info
    for path in (str(g['map']), 'map', 'map/.'):
        resp = g['client'].call(MergeMap, 'vpr/merge_map', MergeMap.Request(path=path))
        assert not resp.success and 'into itself' in resp.message, (path, resp.message)
    assert g['client'].call(SaveMap, 'vpr/save_map', SaveMap.Request(path='copy')).success
    resp = g['client'].call(MergeMap, 'vpr/merge_map', MergeMap.Request(path='copy'))
    assert not resp.success and 'copy of this map' in resp.message
    resp = g['client'].call(MergeMap, 'vpr/merge_map',
                            MergeMap.Request(path='copy', deduplicate=True))
    assert resp.success and resp.num_added == 0, resp.message
    after = _info(g).info
    assert (after.num_places, after.version) == (info.num_places, info.version)
