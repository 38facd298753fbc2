"""A map built from each source kind (VG folder, CSV manifest, MCAP and sqlite3 bags) loads in
the gallery server, switched at runtime through its map_path parameter, and answers over DDS."""
import cv2
import pytest
from rcl_interfaces.msg import Parameter as ParameterMsg, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters

from node_fixtures import place_images, write_params
from ros_harness import NodeProcess, RosClient, wait_for
from vpr_ros.io.bag_writer import write_bag
from vpr_ros.io.vg import format_vg_name, VGRecord
from vpr_ros.mapstore.build import build_map, BuildConfig
from vpr_ros.srv import GetMapInfo, QueryMap

N = 5


def _sources(tmp, images):
    """{kind: (BuildConfig kwargs, expected x of image i)}."""
    (tmp / 'vg' / 'database').mkdir(parents=True)
    (tmp / 'manifest' / 'img').mkdir(parents=True)
    rows = ['image,x,y,yaw_deg']
    for i, img in enumerate(images):
        r = VGRecord(path='', utm_e=465000.0 + 40 * i, utm_n=5247000.0, zone_number=32,
                     zone_letter='T', heading=90.0)
        cv2.imwrite(str(tmp / 'vg' / 'database' / format_vg_name(r, '.png')), img[..., ::-1])
        cv2.imwrite(str(tmp / 'manifest' / 'img' / f'{i}.png'), img[..., ::-1])
        rows.append(f'img/{i}.png,{40.0 * i},0,0')
    (tmp / 'manifest' / 'places.csv').write_text('\n'.join(rows) + '\n')
    stamped = [(10.0 + i, img) for i, img in enumerate(images)]
    poses = [(10.0 + 0.5 * k, 20.0 * k, 0.0, 0.0) for k in range(2 * N)]
    out = {'vg': dict(source='vg', input=str(tmp / 'vg')),
           'manifest': dict(source='manifest', input=str(tmp / 'manifest' / 'places.csv'))}
    for storage in ('mcap', 'sqlite3'):
        bag = write_bag(tmp / f'bag_{storage}', stamped, poses, storage=storage,
                        compressed=storage == 'mcap')
        out[storage] = dict(source='bag', input=str(bag), keyframe_dist=1.0)
    return out


@pytest.fixture(scope='module')
def maps(tmp_path_factory, test_model):
    model, size = test_model
    tmp = tmp_path_factory.mktemp('sources')
    images = place_images(N, seed=11)
    built = {}
    for kind, kw in _sources(tmp, images).items():
        build_map(BuildConfig(model=model, out=str(tmp / f'map_{kind}'), input_size=tuple(size),
                              dtype='float32', progress=False, **kw))
        built[kind] = str(tmp / f'map_{kind}')
    return tmp, images, built


def set_map_path(client, node: str, path: str):
    req = SetParameters.Request(parameters=[ParameterMsg(
        name='map_path', value=ParameterValue(type=ParameterType.PARAMETER_STRING,
                                              string_value=path))])
    return client.call(SetParameters, f'{node}/set_parameters', req)


def test_every_source_kind_is_served(maps, test_model):
    tmp, images, built = maps
    from vpr_ros.models.runtime import load_encoder
    enc = load_encoder(model=test_model[0], input_size=tuple(test_model[1]))
    params = write_params(tmp / 'p.yaml', *test_model, '', namespace='/src',
                          gallery_server={'maps_root': str(tmp)})  # map_path confined to it
    node = NodeProcess('gallery_server', params, tmp, namespace='/src')
    client = RosClient('sources_client')
    try:
        for kind, path in built.items():
            assert set_map_path(client, '/src/gallery_server', path).results[0].successful
            info = wait_for(lambda: (lambda r: r.success and r.info.map_path == path and r)(
                client.call(GetMapInfo, '/src/vpr/get_map_info', GetMapInfo.Request())),
                30, what=f'{kind} map loaded')
            assert info.info.num_places == N, kind
            for i in (1, 3):
                res = client.call(QueryMap, '/src/vpr/query_map', QueryMap.Request(
                    descriptor=enc.encode(images[i])[0].tolist(), k=2))
                assert res.success, res.message
                assert res.candidates[0].score > 0.9, kind  # JPEG in the MCAP bag
                assert res.candidates[0].pose.position.x == pytest.approx(40.0 * i), kind
        set_map_path(client, '/src/gallery_server', str(tmp / 'nope'))
        res = client.call(GetMapInfo, '/src/vpr/get_map_info', GetMapInfo.Request())
        assert not res.success and 'nope' in res.message and node.alive()
    finally:
        client.close()
        node.stop()
