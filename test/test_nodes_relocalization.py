"""A relocalization that reaches the robot's stack, over DDS: on a kidnapped robot the matcher
publishes robot_localization's set_pose (frame map, the image's stamp, the estimate's
covariance) and AMCL's initialpose, with the camera's mounting offset removed and odometry
taken at each image's stamp."""
import math

import numpy as np
import pytest
import yaml
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry

from ros_harness import NodeProcess, RosClient, wait_for
from vpr_ros.msg import Descriptor, LocalizationStatus

SPACING, N = 10.0, 16
MOUNT = (0.5, 0.0, 0.0)  # the camera 0.5 m ahead of base_link


@pytest.fixture(scope='module')
def graph(tmp_path_factory):
    from vpr_ros.mapstore import MapStore, PlaceRecord
    tmp = tmp_path_factory.mktemp('reloc')
    rng = np.random.default_rng(4)
    descs = rng.normal(size=(N, 64)).astype(np.float32)
    descs /= np.linalg.norm(descs, axis=1, keepdims=True)
    store = MapStore.create(tmp / 'map', 'synthetic64', 64, dtype='float32')
    store.add(descs, [PlaceRecord(x=i * SPACING, y=0.0) for i in range(N)])
    store.save()
    store.close()
    params = {'/**/matcher': {'ros__parameters': {
        'map_path': str(tmp / 'map'), 'use_filter': True, 'output_mode': 'both',
        'odom_topic': 'odom', 'set_pose_topic': 'set_pose', 'initialpose_min_interval_s': 0.0,
        'camera_x_m': MOUNT[0], 'camera_y_m': MOUNT[1], 'camera_yaw_rad': MOUNT[2],
        'filter.max_speed_mps': 15.0}}}
    (tmp / 'p.yaml').write_text(yaml.safe_dump(params))
    node = NodeProcess('matcher', str(tmp / 'p.yaml'), tmp, namespace='/reloc')
    client = RosClient('reloc_client')
    out = {'descs': descs, 'node': node, 'client': client,
           'set_pose': client.collect(PoseWithCovarianceStamped, '/reloc/set_pose'),
           'initialpose': client.collect(PoseWithCovarianceStamped, '/reloc/initialpose'),
           'status': client.collect(LocalizationStatus, '/reloc/vpr/status'),
           'desc_pub': client.node.create_publisher(Descriptor, '/reloc/vpr/descriptor', 50),
           'odom_pub': client.node.create_publisher(Odometry, '/reloc/odom', 50)}
    try:
        wait_for(lambda: 'matching against' in node.log(), 120, what='matcher')
        wait_for(lambda: out['desc_pub'].get_subscription_count() > 0, 30, what='discovery')
        yield out
    finally:
        client.close()
        node.stop()


def stamp(t: float) -> Time:
    return Time(sec=int(t), nanosec=int(round((t % 1) * 1e9)))


def test_kidnapped_robot_reaches_set_pose_and_initialpose(graph):
    g = graph
    odom_x, t = 0.0, 100.0

    def frame(place: int):
        nonlocal odom_x, t
        # odometry at 20 Hz around the image (the robot drives 1 m per frame); the image is
        # stamped between two odometry messages, as a camera is
        for dt in (0.0, 0.05):
            o = Odometry()
            o.header.stamp, o.header.frame_id = stamp(t + dt), 'odom'
            o.pose.pose.position.x, o.pose.pose.orientation.w = odom_x + 20 * dt, 1.0
            g['odom_pub'].publish(o)
        d = Descriptor(encoder='synthetic64', descriptor=g['descs'][place].tolist())
        d.header.stamp, d.header.frame_id = stamp(t + 0.025), 'camera'
        g['desc_pub'].publish(d)
        want = stamp(t + 0.025)
        wait_for(lambda: any(s.header.stamp == want for s in g['status']), 30,
                 what=f'status of the frame at {t + 0.025:.3f}')
        odom_x, t = odom_x + 1.0, t + 1.0

    for place in (2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5):  # localized on the first track
        frame(place)
    assert g['status'][-1].state == LocalizationStatus.LOCALIZED
    wait_for(lambda: g['set_pose'], 10, what='set_pose of the first localization')
    first = len(g['set_pose'])
    for place in [12] * 10 + [13] * 6:  # carried to place 12 (odometry saw nothing)
        frame(place)
    wait_for(lambda: len(g['set_pose']) > first, 10, what='set_pose after the kidnap')
    p = g['set_pose'][-1]
    assert p.header.frame_id == 'map'
    assert any(s.relocalized and s.header.stamp == p.header.stamp for s in g['status'])
    assert p.header.stamp.nanosec == 25_000_000  # the image's stamp, not the arrival time
    # base_link = camera pose minus the 0.5 m mount: the camera at place 12 or 13
    assert 12 * SPACING - MOUNT[0] - 6 <= p.pose.pose.position.x <= 13 * SPACING - MOUNT[0] + 6
    cov = np.asarray(p.pose.covariance).reshape(6, 6)
    assert np.all(np.isfinite(cov)) and cov[0, 0] > 0 and cov[1, 1] > 0 and cov[5, 5] > 0
    assert math.isfinite(p.pose.pose.orientation.w)
    assert g['initialpose'] and g['initialpose'][-1].header.stamp == p.header.stamp
