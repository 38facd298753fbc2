"""The robot-side graph over DDS: query_encoder on an .onnx file, gallery_server and matcher on
an existing map, as real processes. None of them imports torch, timm or torchvision (every
import is logged with PYTHONPROFILEIMPORTTIME), and frames still localize to their places."""
import re

import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage

from node_fixtures import build_test_map, place_images, write_params
from ros_harness import NodeProcess, RosClient, wait_for
from vpr_ros.msg import PlaceMatch
from vpr_ros.nodes.conversions import rgb_to_compressed

HEAVY = ('torch', 'timm', 'torchvision')
IMPORT_LINE = re.compile(r'^import time:\s+\d+\s+\|\s+\d+\s+\|\s*([\w.]+)', re.M)


def imported_packages(log: str) -> set:
    """Top-level packages a process imported, from its -X importtime lines."""
    return {m.split('.')[0] for m in IMPORT_LINE.findall(log)}


@pytest.fixture(scope='module')
def robot_graph(tmp_path_factory, test_model):
    from vpr_ros.models import create_model
    from vpr_ros.models.checkpoint import model_meta
    from vpr_ros.models.onnx_export import export_onnx
    model, size = test_model
    tmp = tmp_path_factory.mktemp('robot')
    images = place_images(5, size=(240, 320), seed=7)
    build_test_map(tmp / 'map', model, size, images)
    net = create_model(model, pretrained=True, input_size=tuple(size)).eval()
    onnx = tmp / 'query.onnx'
    export_onnx(net, model_meta(net), out=str(onnx), batch=1)
    params = write_params(tmp / 'params.yaml', model, size, tmp / 'map', query_encoder={
        'model': '', 'checkpoint': str(onnx), 'backend': 'onnxruntime', 'threads': 1,
        'transport': 'compressed'})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('PYTHONPROFILEIMPORTTIME', '1')  # inherited through the wheels' re-exec
        nodes = {exe: NodeProcess(exe, params, tmp)
                 for exe in ('gallery_server', 'query_encoder', 'matcher')}
    client = RosClient('vpr_robot_client')
    out = {'nodes': nodes, 'client': client, 'images': images,
           'matches': client.collect(PlaceMatch, 'vpr/match'),
           'jpeg': client.node.create_publisher(CompressedImage, 'camera/image_raw/compressed',
                                                10)}
    try:
        for name, marker in (('query_encoder', 'backend onnxruntime) ready'),
                             ('matcher', 'matching against')):
            node = nodes[name]
            wait_for(lambda: marker in node.log() or not node.alive(), 240, what=name)
            assert node.alive(), node.log()[-3000:]
        wait_for(lambda: client.node.count_subscribers('camera/image_raw/compressed') > 0
                 and client.node.count_publishers('vpr/match') > 0, 30, what='discovery')
        yield out
    finally:
        client.close()
        for n in nodes.values():
            n.stop()


def test_onnx_graph_localizes_and_imports_no_torch(robot_graph):
    g = robot_graph
    for i in (1, 3, 4):
        stamp = Time(sec=500 + i)
        msg = rgb_to_compressed(g['images'][i], 'jpeg')
        msg.header.stamp = stamp

        def matched():  # re-sent each poll until it arrives: the first may beat discovery
            g['jpeg'].publish(msg)
            return next((m for m in g['matches'] if m.header.stamp == stamp), None)
        match = wait_for(matched, 60, period=1.0, what=f'match {i}')
        assert match.candidates[0].place_id == i and match.candidates[0].score > 0.9  # JPEG
    for name, node in g['nodes'].items():
        log = node.log()
        packages = imported_packages(log)
        assert {'numpy', 'vpr_ros'} <= packages, (name, log[-2000:])  # the profile is there
        assert not packages & set(HEAVY), f'{name} imported {sorted(packages & set(HEAVY))}'
    assert 'onnxruntime' in imported_packages(g['nodes']['query_encoder'].log())
