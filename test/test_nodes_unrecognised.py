"""Degenerate frames over DDS (black, white, gray, 1x1, noise: a lens cap, a blank wall, a
broken camera): the graph publishes the match with localized false, no pose prior, and keeps
localizing real frames."""
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseWithCovarianceStamped
from sensor_msgs.msg import Image

from node_fixtures import build_test_map, place_images, write_params
from ros_harness import NodeProcess, RosClient, stop_all, wait_for, wait_started
from ros_harness import warm_up as harness_warm_up
from vpr_ros.msg import PlaceMatch
from vpr_ros.nodes.conversions import rgb_to_image

DEGENERATE = {'black': np.zeros((96, 128, 3), np.uint8),
              'white': np.full((96, 128, 3), 255, np.uint8),
              'gray': np.full((96, 128, 3), 128, np.uint8),
              '1x1': np.full((1, 1, 3), 90, np.uint8),
              'noise': np.random.default_rng(1).integers(0, 256, (96, 128, 3), dtype=np.uint8)}


@pytest.fixture(scope='module')
def graph(tmp_path_factory, test_model):
    model, size = test_model
    tmp = tmp_path_factory.mktemp('unrecognised')
    images = place_images(5, seed=21)
    build_test_map(tmp / 'map', model, size, images)
    params = write_params(tmp / 'p.yaml', model, size, tmp / 'map', namespace='/ood',
                          query_encoder={'image_qos': 'reliable'})
    nodes = {exe: NodeProcess(exe, params, tmp, namespace='/ood') for exe in
             ('gallery_server', 'query_encoder', 'matcher')}
    client = RosClient('ood_client')
    out = {'images': images, 'client': client, 'nodes': nodes,
           'matches': client.collect(PlaceMatch, '/ood/vpr/match'),
           'priors': client.collect(PoseWithCovarianceStamped, '/ood/vpr/pose_prior'),
           'pub': client.node.create_publisher(Image, '/ood/camera/image_raw', 10)}
    try:
        wait_started(nodes, ('query_encoder',), ('matcher',))
        wait_for(lambda: out['pub'].get_subscription_count() > 0, 30, what='discovery')
        warm_up(out)
        yield out
    finally:
        stop_all(client, nodes)


def warm_up(graph) -> None:
    """Send a real frame (place 3, stamps 50..) until its match comes back."""
    def publish(i):
        msg = rgb_to_image(graph['images'][3])
        msg.header.stamp = Time(sec=50 + i)
        graph['pub'].publish(msg)
    harness_warm_up(publish, lambda: graph['matches'], what='a match of a real frame')


def send(graph, img, sec: int):
    msg = rgb_to_image(img)
    msg.header.stamp = Time(sec=sec)
    graph['pub'].publish(msg)
    return wait_for(lambda: next((m for m in graph['matches'] if m.header.stamp.sec == sec),
                                 None), 60, what=f'match of frame {sec}')


def test_degenerate_frames_give_no_prior_and_real_frames_still_localize(graph):
    for k, (name, img) in enumerate(DEGENERATE.items()):
        for rep in range(3):
            sec = 100 + 10 * k + rep
            match = send(graph, img, sec)
            assert not match.localized, name
    real = send(graph, graph['images'][3], 500)
    assert real.localized and real.candidates[0].place_id == 3
    wait_for(lambda: any(p.header.stamp.sec == 500 for p in graph['priors']), 10,
             what='prior of the real frame')
    false_priors = [p for p in graph['priors'] if 100 <= p.header.stamp.sec < 500]
    assert not false_priors  # 15 degenerate frames, 0 priors
    assert 'unrecognised frame' in graph['nodes']['matcher'].log()
