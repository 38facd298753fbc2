"""rosbag2 output (MCAP or sqlite3) of a rendered traversal, written with rosbags (no ROS needed).

Topics: /camera/image_raw/compressed (sensor_msgs/CompressedImage, JPEG, frame 'camera_optical'),
optionally /camera/image_raw (sensor_msgs/Image rgb8), /camera/camera_info (sensor_msgs/
CameraInfo: the renderer's pinhole intrinsics, no distortion; when given), /odom
(nav_msgs/Odometry ground truth, header.frame_id 'map', child 'base_link'), optionally /gps/fix
(sensor_msgs/NavSatFix, ground truth, frame 'base_link'), /tf (map -> base_link) and once
/tf_static (base_link -> camera_optical, offered transient local). base_link is the camera's
ground projection, x forward along the camera's yaw; every topic of a frame carries the same
stamp.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Tuple

import numpy as np

from vpr_ros.geo import MapOrigin
from vpr_ros.imaging import encode_compressed, encode_raw
from vpr_ros.io.bag_writer import BAG_VERSION
from vpr_ros.world.camera import CameraPose

STORAGE_SUFFIX = {'mcap': '.mcap', 'sqlite3': '.db3'}
TOPICS = {
    '/camera/image_raw/compressed': 'sensor_msgs/msg/CompressedImage',
    '/camera/image_raw': 'sensor_msgs/msg/Image',
    '/camera/camera_info': 'sensor_msgs/msg/CameraInfo',
    '/odom': 'nav_msgs/msg/Odometry',
    '/gps/fix': 'sensor_msgs/msg/NavSatFix',
    '/tf': 'tf2_msgs/msg/TFMessage',
    '/tf_static': 'tf2_msgs/msg/TFMessage',
}
# base_link (x forward, y left, z up) -> optical frame (z forward, x right, y down)
OPTICAL_QUAT = (-0.5, 0.5, -0.5, 0.5)


def optical_quat(pitch: float) -> Tuple[float, float, float, float]:
    """(x, y, z, w) of the optical frame in base_link for a camera pitched up ``pitch`` rad
    (a rotation of -pitch about base_link's y axis, then OPTICAL_QUAT)."""
    y1, w1 = math.sin(-pitch / 2), math.cos(-pitch / 2)
    x2, y2, z2, w2 = OPTICAL_QUAT
    return (w1 * x2 + y1 * z2, w1 * y2 + y1 * w2, w1 * z2 - y1 * x2, w1 * w2 - y1 * y2)


def _static_qos():
    from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness,
                                    QosReliability, QosTime)
    zero = QosTime(0, 0)
    return Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL,
               zero, zero, QosLiveliness.AUTOMATIC, zero, False)


class BagWriter:
    """Streams (stamp_ns, pose, rgb) frames into one rosbag2 folder (context manager).

    ``speed_mps`` goes into the odometry twist; ``camera`` (a vpr_ros.io.camera_file dict:
    fx, fy, cx, cy, width, height) is published on /camera/camera_info with every image (no
    topic without it). rosbags refuses to overwrite an existing bag.
    """

    def __init__(self, path, origin: MapOrigin, storage: str = 'mcap', raw: bool = False,
                 speed_mps: float = 0.0, jpeg_quality: int = 90, gps: bool = True,
                 camera=None):
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore
        if storage not in STORAGE_SUFFIX:
            raise ValueError(f'unknown bag storage {storage!r}; known: mcap, sqlite3')
        self.ts = get_typestore(Stores.ROS2_HUMBLE)
        self.path, self.origin, self.raw = Path(path), origin, raw
        self.speed, self.quality = speed_mps, jpeg_quality
        skip = ({'/camera/image_raw'} if not raw else set()) | ({'/gps/fix'} if not gps else set())
        skip |= {'/camera/camera_info'} if not camera else set()
        self.camera = camera
        self.topics = {k: v for k, v in TOPICS.items() if k not in skip}
        plugin = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}[storage]
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=plugin)
        self._writer.open()
        self._conns = {topic: self._writer.add_connection(
            topic, msgtype, typestore=self.ts,
            offered_qos_profiles=[_static_qos()] if topic == '/tf_static' else [])
            for topic, msgtype in self.topics.items()}
        self._prev = None
        self.count = 0

    def __enter__(self) -> 'BagWriter':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Finish the bag (writes metadata.yaml)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _put(self, topic, ns, msg):
        self._writer.write(self._conns[topic], ns, self.ts.serialize_cdr(msg, self.topics[topic]))

    def _header(self, ns, frame):
        T = self.ts.types
        return T['std_msgs/msg/Header'](T['builtin_interfaces/msg/Time'](ns // 10**9,
                                                                         ns % 10**9), frame)

    def _transform(self, ns, parent, child, xyz, quat):
        T = self.ts.types
        tf = T['geometry_msgs/msg/Transform'](T['geometry_msgs/msg/Vector3'](*xyz),
                                              T['geometry_msgs/msg/Quaternion'](*quat))
        return T['geometry_msgs/msg/TransformStamped'](self._header(ns, parent), child, tf)

    def write(self, ns: int, pose: CameraPose, rgb: np.ndarray) -> None:
        """Write all topics of one frame stamped ``ns`` (nanoseconds)."""
        T, ns = self.ts.types, int(ns)
        if self.count == 0:
            self._put('/tf_static', ns, T['tf2_msgs/msg/TFMessage']([self._transform(
                ns, 'base_link', 'camera_optical', (0.0, 0.0, pose.z),
                optical_quat(pose.pitch))]))
        self.count += 1
        quat = (0.0, 0.0, math.sin(pose.yaw / 2), math.cos(pose.yaw / 2))
        data = np.frombuffer(encode_compressed(rgb, 'jpeg', self.quality), np.uint8)
        self._put('/camera/image_raw/compressed', ns, T['sensor_msgs/msg/CompressedImage'](
            self._header(ns, 'camera_optical'), 'jpeg', data))
        if self.camera:
            self._put_camera_info(ns)
        if self.raw:
            h, w = rgb.shape[:2]
            self._put('/camera/image_raw', ns, T['sensor_msgs/msg/Image'](
                self._header(ns, 'camera_optical'), h, w, 'rgb8', 0, w * 3,
                np.frombuffer(encode_raw(rgb), np.uint8)))
        yaw_rate = 0.0
        if self._prev is not None and ns > self._prev[0]:
            dyaw = (pose.yaw - self._prev[1] + math.pi) % (2 * math.pi) - math.pi
            yaw_rate = dyaw / ((ns - self._prev[0]) * 1e-9)
        self._prev = (ns, pose.yaw)
        V3, cov = T['geometry_msgs/msg/Vector3'], np.zeros(36)
        odom_pose = T['geometry_msgs/msg/Pose'](T['geometry_msgs/msg/Point'](pose.x, pose.y, 0.0),
                                                T['geometry_msgs/msg/Quaternion'](*quat))
        twist = T['geometry_msgs/msg/Twist'](V3(self.speed, 0.0, 0.0), V3(0.0, 0.0, yaw_rate))
        self._put('/odom', ns, T['nav_msgs/msg/Odometry'](
            self._header(ns, 'map'), 'base_link',
            T['geometry_msgs/msg/PoseWithCovariance'](odom_pose, cov),
            T['geometry_msgs/msg/TwistWithCovariance'](twist, cov)))
        if '/gps/fix' in self.topics:
            self._put_fix(ns, pose)
        self._put('/tf', ns, T['tf2_msgs/msg/TFMessage']([self._transform(
            ns, 'map', 'base_link', (pose.x, pose.y, 0.0), quat)]))

    def _put_camera_info(self, ns: int) -> None:
        T, c = self.ts.types, self.camera
        k = np.array([c['fx'], 0, c['cx'], 0, c['fy'], c['cy'], 0, 0, 1], np.float64)
        p = np.array([c['fx'], 0, c['cx'], 0, 0, c['fy'], c['cy'], 0, 0, 0, 1, 0], np.float64)
        roi = T['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0,
                                                    do_rectify=False)
        self._put('/camera/camera_info', ns, T['sensor_msgs/msg/CameraInfo'](
            header=self._header(ns, 'camera_optical'), height=int(c['height']),
            width=int(c['width']), distortion_model='plumb_bob', d=np.zeros(5), k=k,
            r=np.eye(3).reshape(9), p=p, binning_x=0, binning_y=0, roi=roi))

    def _put_fix(self, ns: int, pose: CameraPose) -> None:
        T = self.ts.types
        lat, lon = self.origin.xy_to_latlon([[pose.x, pose.y]])[0]
        # ground truth; a nominal 1 m (horizontal) / 2 m (vertical) sigma so that consumers that
        # reject unknown covariances still accept it
        self._put('/gps/fix', ns, T['sensor_msgs/msg/NavSatFix'](
            self._header(ns, 'base_link'), T['sensor_msgs/msg/NavSatStatus'](0, 1),
            float(lat), float(lon), 0.0, np.array([1.0, 0, 0, 0, 1.0, 0, 0, 0, 4.0]), 2))


def write_bag(path, frames: Iterable[Tuple[int, CameraPose, np.ndarray]], origin: MapOrigin,
              storage: str = 'mcap', **kwargs) -> Path:
    """Write (stamp_ns, pose, rgb) frames to a new rosbag2 folder; kwargs go to BagWriter."""
    with BagWriter(path, origin, storage, **kwargs) as bag:
        for ns, pose, rgb in frames:
            bag.write(ns, pose, rgb)
    return Path(path)
