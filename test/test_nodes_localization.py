"""Managed nodes brought up by vpr-ros run --managed; the filter's status, relocalization and
AMCL initialpose outputs; matchers following map updates without a restart."""
import math
import signal
import subprocess
import sys

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose, PoseWithCovarianceStamped
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from node_fixtures import build_test_map, place_images, write_params
from ros_harness import python_env, RosClient, wait_for
from vpr_ros.msg import Keyframe, LocalizationStatus, PlaceMatch
from vpr_ros.nodes.conversions import rgb_to_image
from vpr_ros.srv import AddPlaces


@pytest.fixture(scope='module')
def managed(tmp_path_factory, test_model):
    model, size = test_model
    tmp = tmp_path_factory.mktemp('managed')
    images = place_images(7, seed=3)
    build_test_map(tmp / 'map', model, size, images[:6])
    params = write_params(tmp / 'p.yaml', model, size, tmp / 'map', namespace='/loc',
                          matcher={'use_filter': True, 'output_mode': 'both',
                                   'initialpose_min_interval_s': 0.0})
    log = open(tmp / 'run.log', 'w')
    proc = subprocess.Popen([sys.executable, '-m', 'vpr_ros', 'run', 'localize', '--managed',
                             '--params-file', params, '--namespace', '/loc'],
                            stdout=log, stderr=subprocess.STDOUT, env=python_env(),
                            start_new_session=True)
    client = RosClient('managed_client')
    out = {'images': images, 'client': client, 'tmp': tmp, 'proc': proc, 'model': model,
           'size': size, 'log': tmp / 'run.log',
           'matches': client.collect(PlaceMatch, '/loc/vpr/match'),
           'status': client.collect(LocalizationStatus, '/loc/vpr/status'),
           'initialpose': client.collect(PoseWithCovarianceStamped, '/loc/initialpose'),
           'pub': client.node.create_publisher(Image, '/loc/camera/image_raw', 10)}
    try:
        def up():
            assert proc.poll() is None, out['log'].read_text()
            return 'matcher: activated' in out['log'].read_text()
        wait_for(up, 300, what='lifecycle bring-up')
        wait_for(lambda: client.node.count_subscribers('/loc/camera/image_raw') > 0, 30,
                 what='discovery')
        yield out
    finally:
        client.close()
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        log.close()


def publish(m, img, sec: int):
    msg = rgb_to_image(img)
    msg.header.stamp, msg.header.frame_id = Time(sec=sec), 'camera_optical'
    m['pub'].publish(msg)


def drive(m, img, first_sec: int, frames: int):
    for k in range(frames):
        publish(m, img, first_sec + k)
        wait_for(lambda: any(s.header.stamp.sec == first_sec + k for s in m['status']), 30,
                 what=f'status of frame {first_sec + k}')


def test_managed_nodes_localize_and_publish_initialpose_once(managed):
    drive(managed, managed['images'][2], 100, 12)
    states = [s for s in managed['status'] if 100 <= s.header.stamp.sec < 112]
    assert states[0].state != LocalizationStatus.LOCALIZED  # needs consistent frames first
    assert states[-1].state == LocalizationStatus.LOCALIZED
    assert sum(s.relocalized for s in states) == 1
    wait_for(lambda: managed['initialpose'], 10, what='initialpose')
    assert len(managed['initialpose']) == 1
    pose = managed['initialpose'][0]
    assert pose.header.frame_id == 'map' and pose.pose.pose.position.x == pytest.approx(60, abs=5)


def test_trigger_relocalization_clears_the_filter(managed):
    res = managed['client'].call(Trigger, '/loc/vpr/trigger_relocalization', Trigger.Request())
    assert res.success
    drive(managed, managed['images'][4], 200, 10)
    states = [s for s in managed['status'] if 200 <= s.header.stamp.sec < 210]
    assert states[0].state != LocalizationStatus.LOCALIZED
    assert states[-1].state == LocalizationStatus.LOCALIZED
    wait_for(lambda: len(managed['initialpose']) == 2, 10, what='second initialpose')
    assert managed['initialpose'][1].pose.pose.position.x == pytest.approx(120, abs=5)


def test_matcher_follows_map_updates_without_restart(managed):
    from vpr_ros.models.runtime import load_encoder
    new_image = managed['images'][6]
    desc = load_encoder(model=managed['model'], input_size=tuple(managed['size'])).encode(
        new_image)[0]
    kf = Keyframe(robot_id='r9', session='late', encoder=managed['model'],
                  descriptor=desc.tolist(), latitude=math.nan, longitude=math.nan)
    kf.header.frame_id = 'map'
    kf.pose = Pose()
    kf.pose.position.x, kf.pose.orientation.w = 999.0, 1.0
    res = managed['client'].call(AddPlaces, '/loc/vpr/add_places',
                                 AddPlaces.Request(keyframes=[kf]))
    assert res.success, res.message

    def top_x():
        publish(managed, new_image, 300)
        wait_for(lambda: any(m.header.stamp.sec == 300 for m in managed['matches']), 30,
                 what='match')
        last = [m for m in managed['matches'] if m.header.stamp.sec == 300][-1]
        return last.candidates[0].pose.position.x == 999.0
    wait_for(top_x, 30, period=0.5, what='the new place in the matcher')
    assert np.isclose([m for m in managed['matches'] if m.header.stamp.sec == 300][-1]
                      .candidates[0].score, 1.0, atol=1e-3)
