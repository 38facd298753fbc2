"""Geometric verification over DDS: the query_encoder sends the frame's local features in the
Descriptor, the matcher verifies its top-k with them and says so in PlaceMatch (real nodes)."""
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image

from node_fixtures import build_verified_map, textured_images, write_params
from ros_harness import NodeProcess, RosClient, wait_for
from vpr_ros.msg import Descriptor, PlaceMatch
from vpr_ros.nodes.conversions import rgb_to_image

N_PLACES = 5


@pytest.fixture(scope='module')
def graph(tmp_path_factory, test_model):
    model, size = test_model
    tmp = tmp_path_factory.mktemp('verify')
    images = textured_images(N_PLACES)
    build_verified_map(tmp / 'map', model, size, images)
    params = write_params(tmp / 'params.yaml', model, size, tmp / 'map')
    nodes = [NodeProcess(exe, params, tmp) for exe in ('query_encoder', 'matcher')]
    client = RosClient()
    out = {'images': images, 'nodes': {n.name: n for n in nodes}, 'client': client,
           'descriptors': client.collect(Descriptor, 'vpr/descriptor'),
           'matches': client.collect(PlaceMatch, 'vpr/match'),
           'raw': client.node.create_publisher(Image, 'camera/image_raw', 10)}
    wait_for(lambda: 'ready' in out['nodes']['query_encoder'].log(), 240, what='encoder start')
    wait_for(lambda: 'verifying the top-k' in out['nodes']['matcher'].log(), 240,
             what='matcher with verification')
    wait_for(lambda: client.node.count_subscribers('camera/image_raw') > 0
             and client.node.count_publishers('vpr/match') > 0, 30, what='discovery')
    yield out
    client.close()
    for n in nodes:
        n.stop()


def test_matcher_verifies_with_the_encoders_local_features(graph):
    stamp = Time(sec=1200, nanosec=5)
    msg = rgb_to_image(graph['images'][3], 'rgb8')
    msg.header.stamp, msg.header.frame_id = stamp, 'camera_optical'
    graph['raw'].publish(msg)
    match = wait_for(lambda: next((m for m in graph['matches'] if m.header.stamp == stamp),
                                  None), 60, what='match')
    desc = next(d for d in graph['descriptors'] if d.header.stamp == stamp)
    assert desc.local_method == 'rootsift' and (desc.image_width, desc.image_height) == (160, 120)
    assert len(desc.local_descriptors) == 128 * len(desc.keypoints) // 2 > 0
    assert match.candidates[0].place_id == 3
    assert match.pose_source == PlaceMatch.VERIFIED and match.inliers >= 50  # no intrinsics
    assert match.candidates[0].score > 1.0  # score + the inlier bonus
