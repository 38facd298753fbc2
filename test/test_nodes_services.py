"""gallery_server services over DDS, their validation, and a missing map."""
import math

import numpy as np
import pytest
from geometry_msgs.msg import Pose

from node_fixtures import build_test_map, place_images, write_params
from ros_harness import NodeProcess, RosClient, wait_for
from vpr_ros.msg import Keyframe
from vpr_ros.srv import AddPlaces, GetMapInfo, MergeMap, QueryMap, SaveMap


@pytest.fixture(scope='module')
def server(tmp_path_factory, test_model):
    model, size = test_model
    tmp = tmp_path_factory.mktemp('server')
    descs = build_test_map(tmp / 'map', model, size, place_images(4))
    other = tmp / 'other_map'
    from vpr_ros.mapstore import MapStore, PlaceRecord
    s = MapStore.create(other, encoder='some_other_model', dim=descs.shape[1])
    s.add(descs[:1], [PlaceRecord(x=1.0, y=1.0)])
    s.save()
    s.close()
    params = write_params(tmp / 'params.yaml', model, size, tmp / 'map')
    node = NodeProcess('gallery_server', params, tmp)
    client = RosClient('service_client')
    yield {'node': node, 'client': client, 'descs': descs, 'tmp': tmp, 'model': model}
    client.close()
    node.stop()


def query(server, desc, k=3, encoder=''):
    req = QueryMap.Request(descriptor=np.asarray(desc, np.float32).tolist(), k=k,
                           encoder=encoder)
    return server['client'].call(QueryMap, 'vpr/query_map', req)


def keyframe(server, desc, x, frame='map', robot='r1', encoder=None):
    kf = Keyframe(robot_id=robot, session='s1', encoder=encoder or server['model'],
                  descriptor=np.asarray(desc, np.float32).tolist(), latitude=math.nan,
                  longitude=math.nan)
    kf.header.frame_id = frame
    kf.pose = Pose()
    kf.pose.position.x = float(x)
    kf.pose.orientation.w = 1.0
    return kf


def test_query_round_trip(server):
    resp = query(server, server['descs'][2], k=3)
    assert resp.success, resp.message
    assert [c.place_id for c in resp.candidates][:1] == [2]
    assert resp.candidates[0].pose.position.x == pytest.approx(60.0)
    assert len(resp.candidates) == 3
    assert resp.candidates[0].score >= resp.candidates[1].score


def test_query_rejects_wrong_length_and_nan_then_serves(server):
    resp = query(server, server['descs'][0][:10])
    assert not resp.success and 'expects' in resp.message
    bad = server['descs'][0].copy()
    bad[3] = np.nan
    resp = query(server, bad)
    assert not resp.success and 'NaN' in resp.message
    resp = query(server, server['descs'][0], encoder='not_the_map_encoder')
    assert not resp.success and 'built by' in resp.message
    assert query(server, server['descs'][1]).candidates[0].place_id == 1


def test_info_add_save_and_merge(server):
    client = server['client']
    info = client.call(GetMapInfo, 'vpr/get_map_info', GetMapInfo.Request())
    assert info.success and info.info.num_places == 4 and info.info.encoder == server['model']
    assert info.info.dim == server['descs'].shape[1]
    new = server['descs'][0] * 0.5 + server['descs'][1] * 0.5
    new /= np.linalg.norm(new)
    req = AddPlaces.Request(keyframes=[keyframe(server, new, 500.0)], deduplicate=False)
    resp = client.call(AddPlaces, 'vpr/add_places', req)
    assert resp.success and resp.num_added == 1, resp.message
    assert query(server, new, k=1).candidates[0].pose.position.x == pytest.approx(500.0)
    save = client.call(SaveMap, 'vpr/save_map', SaveMap.Request())
    assert save.success and save.num_places == 5
    info2 = client.call(GetMapInfo, 'vpr/get_map_info', GetMapInfo.Request())
    assert info2.info.version != info.info.version
    from vpr_ros.mapstore import MapStore
    with MapStore.open(server['tmp'] / 'map') as saved:  # persisted
        assert saved.num_places == 5
    merge = client.call(MergeMap, 'vpr/merge_map',
                        MergeMap.Request(path=str(server['tmp'] / 'other_map')))
    assert not merge.success and 'some_other_model' in merge.message
    with MapStore.open(server['tmp'] / 'map') as saved:
        assert saved.num_places == 5


@pytest.mark.parametrize('problem', ['frame', 'length', 'nan', 'encoder'])
def test_add_places_refuses_bad_keyframes_and_writes_nothing(server, problem):
    client = server['client']
    before = client.call(GetMapInfo, 'vpr/get_map_info', GetMapInfo.Request()).info.num_places
    good = keyframe(server, server['descs'][3], 700.0)
    desc = server['descs'][3].copy()
    if problem == 'frame':
        bad = keyframe(server, desc, 1.0, frame='odom')
    elif problem == 'length':
        bad = keyframe(server, desc[:-1], 1.0)
    elif problem == 'nan':
        desc[0] = np.inf
        bad = keyframe(server, desc, 1.0)
    else:
        bad = keyframe(server, desc, 1.0, encoder='dinov2_vitb14_boq')
    resp = client.call(AddPlaces, 'vpr/add_places', AddPlaces.Request(keyframes=[good, bad]))
    assert not resp.success and 'nothing written' in resp.message
    after = client.call(GetMapInfo, 'vpr/get_map_info', GetMapInfo.Request()).info.num_places
    assert after == before


def test_missing_map_directory_is_a_clear_error(tmp_path, test_model):
    model, size = test_model
    missing = tmp_path / 'no_such_map'
    params = write_params(tmp_path / 'p.yaml', model, size, missing, namespace='/missing')
    node = NodeProcess('gallery_server', params, tmp_path, namespace='/missing')
    client = RosClient('missing_client')
    try:
        resp = client.call(GetMapInfo, '/missing/vpr/get_map_info', GetMapInfo.Request())
    finally:
        client.close()
    wait_for(lambda: 'cannot load map' in node.log(), 20, what='log line')
    assert node.alive()
    node.stop()
    assert not resp.success and str(missing) in resp.message
