"""Nothing takes the graph down, over real DDS: image bombs, out-of-range keyframes, escaping
paths, foreign or zero descriptors and a map holding an absurd position."""
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose, PoseWithCovarianceStamped
from rcl_interfaces.msg import Parameter as ParameterMsg, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from sensor_msgs.msg import CompressedImage, Image
from std_srvs.srv import Trigger

from node_fixtures import build_test_map, place_images, write_params
from ros_harness import NodeProcess, RosClient, stop_all, wait_for, wait_started
from test_hostile_inputs import jpeg_bomb
from vpr_ros.msg import Descriptor, Keyframe, PlaceMatch
from vpr_ros.nodes.conversions import rgb_to_image
from vpr_ros.srv import AddPlaces, GetMapInfo, MergeMap, QueryMap, SaveMap


def _bad_map(path, descs):
    """A map saved before positions were bounded: place 0 at x = 1e308."""
    from vpr_ros.mapstore import MapStore, PlaceRecord, store_ops
    keep = vars(store_ops).get('check_position')
    store_ops.check_position = lambda *a: None
    try:
        s = MapStore.create(path, encoder='tiny', dim=descs.shape[1], dtype='float32')
        s.add(descs, [PlaceRecord(x=1e308 if i == 0 else 30.0 * i, y=0.0)
                      for i in range(len(descs))])
        s.save()
        s.close()
    finally:
        if keep is not None:
            store_ops.check_position = keep


@pytest.fixture(scope='module')
def graph(tmp_path_factory, test_model):
    model, size = test_model
    tmp = tmp_path_factory.mktemp('hostile')
    maps = tmp / 'maps'
    images = place_images(4, seed=3)
    descs = build_test_map(maps / 'map', model, size, images)
    _bad_map(maps / 'bad_map', np.eye(4, 16, dtype=np.float32))
    params = write_params(tmp / 'params.yaml', model, size, maps / 'map',
                          query_encoder_jpeg={'transport': 'compressed'})
    with open(tmp / 'bad.yaml', 'w') as f:
        yaml.safe_dump({'/bad/matcher_bad': {'ros__parameters': {
            'map_path': str(maps / 'bad_map'), 'top_k': 4, 'use_filter': True,
            'publish_unlocalized_prior': True, 'map_reload_period_s': 0.5}}}, f)
    nodes = {exe: NodeProcess(exe, params, tmp) for exe in
             ('gallery_server', 'query_encoder', 'matcher')}
    nodes['jpeg'] = NodeProcess('query_encoder', params, tmp, name='query_encoder_jpeg')
    nodes['bad'] = NodeProcess('matcher', str(tmp / 'bad.yaml'), tmp, name='matcher_bad',
                               namespace='/bad')
    client = RosClient('hostile_client')
    g = {'tmp': tmp, 'maps': maps, 'images': images, 'descs': descs, 'nodes': nodes,
         'client': client, 'model': model,
         'descriptors': client.collect(Descriptor, 'vpr/descriptor'),
         'matches': client.collect(PlaceMatch, 'vpr/match'),
         'bad_priors': client.collect(PoseWithCovarianceStamped, '/bad/vpr/pose_prior'),
         'raw': client.node.create_publisher(Image, 'camera/image_raw', 10),
         'jpeg': client.node.create_publisher(CompressedImage, 'camera/image_raw/compressed',
                                              10),
         'desc_pub': client.node.create_publisher(Descriptor, 'vpr/descriptor', 10),
         'bad_pub': client.node.create_publisher(Descriptor, '/bad/vpr/descriptor', 10)}
    wait_started(nodes, ('query_encoder', 'jpeg'), ('matcher', 'bad'))
    wait_for(lambda: client.node.count_subscribers('camera/image_raw') > 0
             and client.node.count_subscribers('camera/image_raw/compressed') > 0
             and client.node.count_subscribers('/bad/vpr/descriptor') > 0, 30, what='discovery')
    yield g
    stop_all(client, nodes)


def _until_logged(node, text, publish, timeout=20.0):
    """Publish (best-effort topics may lose a message) until ``text`` is in the node's log."""
    wait_for(lambda: publish() or text in node.log(), timeout, period=0.3, what=repr(text))


def _peak_rss_mb(node) -> float:
    status = Path(f'/proc/{node.proc.pid}/status').read_text()
    return int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith('VmHWM'))) / 1024


def test_query_encoder_survives_image_bombs(graph):
    qe, client = graph['nodes']['query_encoder'], graph['client']
    bomb = CompressedImage(format='jpeg', data=jpeg_bomb())
    _until_logged(graph['nodes']['jpeg'], 'over the budget', lambda: graph['jpeg'].publish(bomb))
    raw = Image(height=1, width=4, encoding='rgb8', step=4294967295, data=b'\x01' * 16)
    _until_logged(qe, 'larger than the 16 bytes', lambda: graph['raw'].publish(raw))
    good = rgb_to_image(graph['images'][2])
    good.header.stamp = Time(sec=77)
    wait_for(lambda: graph['raw'].publish(good) or any(
        m.header.stamp.sec == 77 for m in graph['matches']), 30, period=0.5,
        what='a good frame still encoded and matched')
    stats = json.loads(client.call(Trigger, 'query_encoder/stats', Trigger.Request()).message)
    jpeg = json.loads(client.call(Trigger, 'query_encoder_jpeg/stats',
                                  Trigger.Request()).message)
    assert stats['errors'] >= 1 and jpeg['errors'] >= 1 and stats['encoded'] >= 1
    assert qe.alive() and graph['nodes']['jpeg'].alive()
    assert _peak_rss_mb(qe) < 2048  # the step bomb used to add 4 GB


def _keyframe(desc, x=10.0, **kw):
    kf = Keyframe(robot_id='r1', session='s1', encoder=kw.pop('encoder', ''),
                  descriptor=np.asarray(desc, np.float32).tolist(), latitude=math.nan,
                  longitude=math.nan)
    kf.header.frame_id = 'map'
    kf.pose = Pose()
    kf.pose.position.x = x
    kf.pose.orientation.w = 1.0
    for k, v in kw.items():
        setattr(kf, k, v)
    return kf


def _num_places(client):
    return client.call(GetMapInfo, 'vpr/get_map_info', GetMapInfo.Request()).info.num_places


def test_gallery_refuses_hostile_keyframes_and_queries(graph):
    client, d = graph['client'], graph['descs'][1]
    before = _num_places(client)
    zero_q = _keyframe(d, encoder=graph['model'])
    zero_q.pose.orientation.w = 0.0
    cases = {'position': _keyframe(d, x=1e308, encoder=graph['model']),
             'quaternion': zero_q,
             'latitude': _keyframe(d, encoder=graph['model'], latitude=100.0, longitude=7.0),
             'at most 256': _keyframe(d, encoder=graph['model'], robot_id='r' * 10000),
             'all zeros': _keyframe(np.zeros_like(d), encoder=graph['model'])}
    for why, kf in cases.items():
        resp = client.call(AddPlaces, 'vpr/add_places', AddPlaces.Request(keyframes=[kf]))
        assert not resp.success and why in resp.message and 'nothing written' in resp.message
    assert _num_places(client) == before
    resp = client.call(QueryMap, 'vpr/query_map', QueryMap.Request(
        descriptor=np.zeros_like(d).tolist(), k=2))
    assert not resp.success and 'all zeros' in resp.message


def test_save_and_merge_stay_inside_the_maps_root(graph):
    client, tmp, maps = graph['client'], graph['tmp'], graph['maps']
    (tmp / 'outside').mkdir(exist_ok=True)
    os.symlink(tmp / 'outside', maps / 'link')
    version = client.call(GetMapInfo, 'vpr/get_map_info', GetMapInfo.Request()).info.version
    for path, why in ((str(tmp / 'outside' / 'copy'), 'outside the maps root'),
                      ('../outside/copy', '".."'), ('link/copy', 'outside the maps root'),
                      ('map/inner', 'inside the map itself')):
        resp = client.call(SaveMap, 'vpr/save_map', SaveMap.Request(path=path))
        assert not resp.success and why in resp.message, (path, resp.message)
    assert list((tmp / 'outside').iterdir()) == [] and not (maps / 'map' / 'inner').exists()
    evil = maps / 'evil_map'
    _bad_map(evil, np.eye(4, graph['descs'].shape[1], dtype=np.float32))
    m = json.loads((evil / 'manifest.json').read_text())
    m['encoder'] = graph['model']
    m['files']['places']['name'] = '../map/' + m['files']['places']['name']
    (evil / 'manifest.json').write_text(json.dumps(m))
    for path, why in ((str(evil), 'bare file name'), (str(tmp / 'outside'), 'outside'),
                      ('', 'empty')):
        resp = client.call(MergeMap, 'vpr/merge_map', MergeMap.Request(path=path))
        assert not resp.success and why in resp.message, (path, resp.message)
    info = client.call(GetMapInfo, 'vpr/get_map_info', GetMapInfo.Request()).info
    assert info.version == version
    resp = client.call(SaveMap, 'vpr/save_map', SaveMap.Request(path='copy'))
    assert resp.success and (maps / 'copy' / 'manifest.json').is_file(), resp.message


def _set_map_path(client, path):
    req = SetParameters.Request(parameters=[ParameterMsg(
        name='map_path', value=ParameterValue(type=ParameterType.PARAMETER_STRING,
                                              string_value=str(path)))])
    return client.call(SetParameters, 'gallery_server/set_parameters', req).results[0]


def test_runtime_map_path_is_confined_and_leaves_no_lock_file(graph):
    client, tmp, maps = graph['client'], graph['tmp'], graph['maps']
    (tmp / 'elsewhere').mkdir()
    (maps / 'not_a_map').mkdir()
    res = _set_map_path(client, tmp / 'elsewhere')
    assert not res.successful and 'outside the maps root' in res.reason
    assert list((tmp / 'elsewhere').iterdir()) == []
    assert client.call(GetMapInfo, 'vpr/get_map_info', GetMapInfo.Request()).success
    assert _set_map_path(client, maps / 'not_a_map').successful
    resp = client.call(GetMapInfo, 'vpr/get_map_info', GetMapInfo.Request())
    assert not resp.success and 'not a map store' in resp.message
    assert list((maps / 'not_a_map').iterdir()) == []
    assert _set_map_path(client, maps / 'map').successful
    wait_for(lambda: client.call(GetMapInfo, 'vpr/get_map_info', GetMapInfo.Request()).success,
             20, what='the map served again')


def test_matcher_refuses_foreign_and_zero_descriptors(graph):
    node, d = graph['nodes']['matcher'], graph['descs'][3]
    foreign = Descriptor(encoder='stranger', descriptor=d.tolist())
    _until_logged(node, "encoder 'stranger' refused", lambda: graph['desc_pub'].publish(foreign))
    assert 'accepted_encoders' in node.log()
    zero = Descriptor(encoder=graph['model'], descriptor=np.zeros_like(d).tolist())
    _until_logged(node, 'all zeros', lambda: graph['desc_pub'].publish(zero))
    assert not any(m.encoder == 'stranger' for m in graph['matches'])
    ok = Descriptor(encoder=graph['model'], descriptor=d.tolist())
    ok.header.stamp = Time(sec=99)
    wait_for(lambda: graph['desc_pub'].publish(ok) or any(
        m.header.stamp.sec == 99 for m in graph['matches']), 20, period=0.3, what='a match')
    assert node.alive()


def test_matcher_never_publishes_a_non_finite_prior(graph):
    node, eye = graph['nodes']['bad'], np.eye(4, 16, dtype=np.float32)
    for i in range(6):  # the absurd place first, then sane ones; the filter keeps going
        msg = Descriptor(encoder='tiny', descriptor=(eye[0] if i < 3 else eye[2]).tolist())
        msg.header.stamp = Time(sec=200 + i)
        wait_for(lambda: graph['bad_pub'].publish(msg) or 'have positions beyond' in node.log()
                 and any(p.header.stamp.sec >= 200 + i for p in graph['bad_priors'])
                 or not node.alive(), 20, period=0.3, what=f'frame {i}')
    assert node.alive(), node.log()[-2000:]
    priors = graph['bad_priors']
    assert priors and all(np.all(np.isfinite(p.pose.covariance))
                          and math.isfinite(p.pose.pose.position.x) for p in priors)
    assert priors[-1].pose.pose.position.x == pytest.approx(60.0, abs=1.0)
