"""Health over DDS: /diagnostics from every node, vpr/status on a timer, one camera transport."""
import json
import time

import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_srvs.srv import Trigger

from node_fixtures import build_test_map, place_images, write_params
from ros_harness import NodeProcess, RosClient, stop_all, wait_for, wait_started
from vpr_ros.msg import Descriptor, LocalizationStatus
from vpr_ros.nodes.conversions import rgb_to_compressed, rgb_to_image

NODES = ('/gallery_server', '/query_encoder', '/matcher', '/nomap/gallery_nomap')
STATUS_TIMEOUT_S = 1.0


@pytest.fixture(scope='module')
def graph(tmp_path_factory, test_model):
    model, size = test_model
    tmp = tmp_path_factory.mktemp('health')
    images = place_images(4, seed=5)
    build_test_map(tmp / 'map', model, size, images)
    params = write_params(tmp / 'params.yaml', model, size, tmp / 'map',
                          query_encoder={'transport': 'compressed',
                                         'camera_info_topic': 'camera/camera_info'},
                          matcher={'status_timeout_s': STATUS_TIMEOUT_S, 'min_confidence': 0.0})
    nodes = {exe: NodeProcess(exe, params, tmp) for exe in
             ('gallery_server', 'query_encoder', 'matcher')}
    # no map_path: the server runs and says why it cannot serve
    nodes['nomap'] = NodeProcess('gallery_server', params, tmp, name='gallery_nomap',
                                 namespace='/nomap')
    client = RosClient('health_client')
    g = {'images': images, 'nodes': nodes, 'client': client,
         'diagnostics': client.collect(DiagnosticArray, '/diagnostics', 50),
         'status': client.collect(LocalizationStatus, 'vpr/status', 50),
         'descriptors': client.collect(Descriptor, 'vpr/descriptor', 50),
         'raw': client.node.create_publisher(Image, 'camera/image_raw', 10),
         'jpeg': client.node.create_publisher(CompressedImage, 'camera/image_raw/compressed', 10),
         'info': client.node.create_publisher(CameraInfo, 'camera/camera_info', 10)}
    wait_started(nodes, ('query_encoder',), ('matcher',))
    wait_for(lambda: client.node.count_subscribers('camera/image_raw/compressed') > 0
             and client.node.count_publishers('vpr/status') > 0, 30, what='discovery')
    yield g
    stop_all(client, nodes)


def latest(graph, name):
    """The newest DiagnosticStatus of node ``name``."""
    for arr in reversed(list(graph['diagnostics'])):
        for s in arr.status:
            if s.name == name:
                return s
    return None


def level(status) -> int:
    return status.level[0] if isinstance(status.level, bytes) else int(status.level)


def values(status) -> dict:
    return {kv.key: kv.value for kv in status.values}


def test_every_node_reports_on_diagnostics_at_least_1hz(graph):
    wait_for(lambda: all(latest(graph, n) for n in NODES), 30, what='a status of every node')
    start, t0 = len(graph['diagnostics']), time.monotonic()
    time.sleep(5.0)
    window = list(graph['diagnostics'])[start:]
    elapsed = time.monotonic() - t0
    for name in NODES:
        rate = sum(s.name == name for arr in window for s in arr.status) / elapsed
        print(f'/diagnostics from {name}: {rate:.2f} Hz')
        assert rate >= 1.0, f'{name}: {rate:.2f} Hz'
    ok = latest(graph, '/gallery_server')
    assert level(ok) == DiagnosticStatus.OK[0] and ok.hardware_id
    assert values(ok)['map_loaded'] == 'true' and int(values(ok)['places']) == 4
    bad = latest(graph, '/nomap/gallery_nomap')
    assert level(bad) == DiagnosticStatus.ERROR[0] and 'map_path' in bad.message
    matcher = latest(graph, '/matcher')
    assert level(matcher) != DiagnosticStatus.ERROR[0]
    assert int(values(matcher)['places']) == 4 and values(matcher)['map_version']


def test_one_transport_one_descriptor_per_frame(graph):
    """The camera publishes every frame raw and compressed: the encoder (transport compressed)
    takes exactly one of them, so one descriptor per frame and nothing counted as dropped."""
    client = graph['client']
    assert client.node.count_subscribers('camera/image_raw') == 0
    before = json.loads(client.call(Trigger, 'query_encoder/stats', Trigger.Request()).message)
    info = CameraInfo(width=160, height=120, k=[100.0, 0, 80, 0, 100.0, 60, 0, 0, 1])
    stamps = [Time(sec=500 + i) for i in range(12)]
    for i, st in enumerate(stamps):
        rgb = graph['images'][i % 4]
        for kind, msg in (('raw', rgb_to_image(rgb)), ('jpeg', rgb_to_compressed(rgb))):
            msg.header.stamp = st
            graph[kind].publish(msg)
        info.header.stamp = st
        graph['info'].publish(info)
        time.sleep(0.25)
    wait_for(lambda: all(any(d.header.stamp == st for d in graph['descriptors'])
                         for st in stamps), 30, what='a descriptor for every frame')
    time.sleep(1.0)  # a second descriptor of some frame would have arrived by now
    for st in stamps:
        assert sum(d.header.stamp == st for d in graph['descriptors']) == 1
    stats = json.loads(client.call(Trigger, 'query_encoder/stats', Trigger.Request()).message)
    assert stats['received'] - before['received'] == len(stamps)
    assert stats['encoded'] - before['encoded'] == len(stamps)
    assert stats['dropped'] == 0 and stats['errors'] == 0
    assert stats['camera_info']['width'] == 160 and stats['camera_info']['height'] == 120
    assert stats['camera_info']['k'][0] == 100.0
    enc = wait_for(lambda: (lambda s: s if s and s.message.startswith('encoding') else None)(
        latest(graph, '/query_encoder')), 10, what='query_encoder healthy')
    assert level(enc) == DiagnosticStatus.OK[0]
    assert float(values(enc)['input_hz']) > 0 and float(values(enc)['encode_ms']) > 0
    assert values(enc)['transport'] == 'compressed'


def test_matcher_status_goes_lost_without_frames_and_is_published_on_a_timer(graph):
    rgb = graph['images'][1]
    msg = rgb_to_compressed(rgb)
    msg.header.stamp = Time(sec=900)
    statuses = graph['status']
    start = len(statuses)
    wait_for(lambda: graph['jpeg'].publish(msg) or any(
        s.state == LocalizationStatus.LOCALIZED for s in statuses[start:]), 20, period=0.3,
        what='localized after a frame')
    t_frame, start = time.monotonic(), len(statuses)
    lost = wait_for(lambda: next((s for s in statuses[start:] if s.state == LocalizationStatus.LOST
                                  and 'no descriptor for' in s.message), None),
                    STATUS_TIMEOUT_S + 5, what='LOST after the timeout')
    assert time.monotonic() - t_frame >= STATUS_TIMEOUT_S - 0.5  # (frames seen late by polling)
    assert lost.header.frame_id == 'map'
    start, t0 = len(statuses), time.monotonic()
    time.sleep(3.0)  # no frames: the status still comes, LOST
    idle = statuses[start:]
    print(f'vpr/status without frames: {len(idle) / (time.monotonic() - t0):.2f} Hz')
    assert len(idle) / (time.monotonic() - t0) >= 1.0
    assert all(s.state == LocalizationStatus.LOST for s in idle)
    matcher = wait_for(lambda: (lambda s: s if s and s.message.startswith('lost') else None)(
        latest(graph, '/matcher')), 10, what='matcher diagnostics lost')
    assert level(matcher) == DiagnosticStatus.WARN[0]
    assert values(matcher)['last_prior_age_s'] != ''
