"""The query camera's K in the Descriptor (issue 34): the query_encoder fills camera_k from its
CameraInfo, scaled to the image the keypoints are in; the matcher decodes it into query_K."""
import json
import types

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, Image
from std_srvs.srv import Trigger

from node_fixtures import build_verified_map, textured_images, write_params
from ros_harness import NodeProcess, RosClient, stop_all, wait_for, wait_started
from vpr_ros.msg import Descriptor, PlaceMatch
from vpr_ros.nodes.conversions import rgb_to_image
from vpr_ros.nodes.matcher import Matcher
from vpr_ros.verification.camera_k import (camera_k_field, decode_camera_k, scaled_camera_k,
                                           UNKNOWN_K)

K640 = [500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0]  # a 640 x 480 camera


def info(k=K640, width=640, height=480):
    """A camera_info summary as the query_encoder keeps it."""
    return {'width': width, 'height': height, 'k': list(k), 'frame_id': 'cam'}


# --- pure functions ---------------------------------------------------------------------------

def test_same_size_keeps_k():
    K = scaled_camera_k(K640, (640, 480), (640, 480))
    np.testing.assert_array_equal(K, np.reshape(K640, (3, 3)))


def test_scaling_is_per_axis():
    K = scaled_camera_k(K640, (640, 480), (320, 120))  # x / 2, y / 4
    np.testing.assert_allclose(K, [[250.0, 0.0, 160.0], [0.0, 127.5, 60.0], [0.0, 0.0, 1.0]])


@pytest.mark.parametrize('k, info_size', [
    (UNKNOWN_K, (640, 480)),                                   # uncalibrated camera
    ([np.nan] + K640[1:], (640, 480)),                         # not finite
    ([np.inf] + K640[1:], (640, 480)),
    ([0.0] + K640[1:], (640, 480)),                            # fx <= 0
    (K640[:4] + [-510.0] + K640[5:], (640, 480)),              # fy <= 0
    (K640[:8], (640, 480)),                                    # not 9 values
    (K640, (0, 0)),                                            # CameraInfo without a size
])
def test_unusable_k_gives_none_and_zeros(k, info_size):
    assert scaled_camera_k(k, info_size, (320, 240)) is None
    assert camera_k_field(info(k, *info_size), (320, 240)) == list(UNKNOWN_K)


def test_no_camera_info_gives_zeros():
    assert camera_k_field(None, (320, 240)) == [0.0] * 9


def test_field_is_row_major_and_decodes_back():
    field = camera_k_field(info(), (160, 120))
    assert len(field) == 9 and all(isinstance(v, float) for v in field)
    assert field == [125.0, 0.0, 80.0, 0.0, 127.5, 60.0, 0.0, 0.0, 1.0]
    K, problem = decode_camera_k(field)
    assert problem == ''
    np.testing.assert_array_equal(K, np.reshape(field, (3, 3)))


def test_decode_zeros_is_unknown_without_a_problem():
    assert decode_camera_k(np.zeros(9)) == (None, '')


@pytest.mark.parametrize('values, words', [
    ([np.nan] + K640[1:], 'not finite'),
    ([-1.0] + K640[1:], 'must be > 0'),
    (K640[:4] + [0.0] + K640[5:], 'must be > 0'),
    (K640[:6] + [1.0, 0.0, 1.0], 'last row'),
    (K640[:8], '8 values'),
    (K640 + [1.0], '10 values'),
    (['a'] * 9, 'not numeric'),
])
def test_decode_refuses_unusable_k_with_the_reason(values, words):
    K, problem = decode_camera_k(values)
    assert K is None and words in problem


# --- the real messages, matcher side ----------------------------------------------------------

class _Log:
    def __init__(self):
        self.warnings = []

    def warning(self, text, **_kw):
        self.warnings.append(text)


def matcher_stub():
    """What Matcher._query_camera_k uses of the node (no rclpy node needed)."""
    return types.SimpleNamespace(log=_Log(), _camera_k_warned=False)


def through_the_wire(msg):
    return deserialize_message(serialize_message(msg), Descriptor)


def test_descriptor_carries_camera_k_to_the_matcher():
    assert np.all(Descriptor().camera_k == 0) and len(Descriptor().camera_k) == 9
    msg = Descriptor(encoder='enc')
    msg.camera_k = camera_k_field(info(), (320, 240))
    stub = matcher_stub()
    K = Matcher._query_camera_k(stub, through_the_wire(msg))
    np.testing.assert_allclose(K, [[250.0, 0.0, 160.0], [0.0, 255.0, 120.0], [0.0, 0.0, 1.0]])
    assert stub.log.warnings == []
    assert Matcher._query_camera_k(stub, through_the_wire(Descriptor())) is None  # unknown
    assert stub.log.warnings == []


def test_matcher_warns_once_about_an_unusable_camera_k():
    msg = Descriptor(encoder='enc')
    msg.camera_k = [float('nan')] + K640[1:]
    stub = matcher_stub()
    assert Matcher._query_camera_k(stub, through_the_wire(msg)) is None
    msg.camera_k = [-5.0] + K640[1:]
    assert Matcher._query_camera_k(stub, through_the_wire(msg)) is None
    assert len(stub.log.warnings) == 1 and 'not finite' in stub.log.warnings[0]


# --- over DDS: CameraInfo -> query_encoder -> camera_k -> matcher -----------------------------

@pytest.fixture(scope='module')
def graph(tmp_path_factory, test_model):
    model, size = test_model
    tmp = tmp_path_factory.mktemp('camera_k')
    images = textured_images(3)
    build_verified_map(tmp / 'map', model, size, images)
    params = write_params(tmp / 'params.yaml', model, size, tmp / 'map',
                          query_encoder={'camera_info_topic': 'camera/camera_info'})
    nodes = {exe: NodeProcess(exe, params, tmp) for exe in ('query_encoder', 'matcher')}
    client = RosClient('camera_k_client')
    g = {'images': images, 'nodes': nodes, 'client': client,
         'descriptors': client.collect(Descriptor, 'vpr/descriptor', 50),
         'matches': client.collect(PlaceMatch, 'vpr/match', 50),
         'raw': client.node.create_publisher(Image, 'camera/image_raw', 10),
         'info': client.node.create_publisher(CameraInfo, 'camera/camera_info', 10),
         'desc': client.node.create_publisher(Descriptor, 'vpr/descriptor', 10)}
    wait_started(nodes, ('query_encoder',), ('matcher',))
    wait_for(lambda: 'verifying the top-k' in nodes['matcher'].log(), 60, what='verification')
    wait_for(lambda: client.node.count_subscribers('camera/image_raw') > 0
             and client.node.count_subscribers('camera/camera_info') > 0
             and client.node.count_publishers('vpr/match') > 0, 30, what='discovery')
    yield g
    stop_all(client, nodes)


def send_frame(graph, i, sec):
    """Publish image ``i`` stamped ``sec`` s; its (descriptor, match)."""
    stamp = Time(sec=sec)
    msg = rgb_to_image(graph['images'][i], 'rgb8')
    msg.header.stamp, msg.header.frame_id = stamp, 'camera_optical'
    graph['raw'].publish(msg)
    return wait_for(lambda: stamped(graph, stamp), 60, what=f'frame {sec}')


def camera_info_seen(graph, cam) -> bool:
    """Publish ``cam``; whether the query_encoder's ~/stats show it."""
    graph['info'].publish(cam)
    stats = json.loads(graph['client'].call(Trigger, 'query_encoder/stats',
                                            Trigger.Request()).message)
    return (stats.get('camera_info') or {}).get('k', [0])[0] == cam.k[0]


def stamped(graph, stamp):
    desc = next((d for d in graph['descriptors'] if d.header.stamp == stamp), None)
    match = next((m for m in graph['matches'] if m.header.stamp == stamp), None)
    return (desc, match) if desc is not None and match is not None else None


def test_camera_info_arrives_as_camera_k_and_the_matcher_takes_it(graph):
    desc, _ = send_frame(graph, 0, 100)  # no CameraInfo yet: unknown
    assert np.all(np.asarray(desc.camera_k) == 0)
    cam = CameraInfo(width=640, height=480, k=K640)  # images are 160 x 120: K / 4
    wait_for(lambda: camera_info_seen(graph, cam), 30, period=0.3,
             what='the CameraInfo at the query_encoder')
    desc, match = send_frame(graph, 1, 101)
    assert (desc.image_width, desc.image_height) == (160, 120) and len(desc.keypoints) > 0
    np.testing.assert_allclose(desc.camera_k, [125.0, 0.0, 80.0, 0.0, 127.5, 60.0, 0, 0, 1])
    assert match.candidates[0].place_id == 1
    assert "map camera's intrinsics are used" not in graph['nodes']['matcher'].log()


def test_matcher_survives_an_unusable_camera_k(graph):
    desc, _ = send_frame(graph, 2, 102)
    bad = through_the_wire(desc)
    bad.camera_k = [float('nan')] + K640[1:]
    for sec in (103, 104):  # said once, however often it comes
        bad.header.stamp = Time(sec=sec)
        graph['desc'].publish(bad)
        wait_for(lambda: any(m.header.stamp == bad.header.stamp for m in graph['matches']),
                 30, what=f'match of the descriptor stamped {sec}')
    log = graph['nodes']['matcher'].log()
    assert log.count('camera_k not finite') == 1
    assert graph['nodes']['matcher'].alive()
