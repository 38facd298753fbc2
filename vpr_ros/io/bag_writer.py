"""Write small rosbag2 bags (sqlite3 or MCAP) of images and poses, for tests and demos."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence, Tuple

import numpy as np

from vpr_ros.imaging import encode_compressed

# rosbag2 metadata version of every bag vpr_ros writes: Humble's `ros2 bag play` reads up to 8;
# version 9 (rosbags' default) is Jazzy and newer only.
BAG_VERSION = 8


def _stamp(types, t: float):
    sec = int(math.floor(t))
    return types['builtin_interfaces/msg/Time'](sec=sec, nanosec=int(round((t - sec) * 1e9)))


def _header(types, t: float, frame: str):
    return types['std_msgs/msg/Header'](stamp=_stamp(types, t), frame_id=frame)


def write_bag(path, images: Sequence[Tuple[float, np.ndarray]],
              poses: Sequence[Tuple[float, float, float, float]], storage: str = 'mcap',
              image_topic: str = '/camera/image_raw', pose_topic: str = '/odom',
              compressed: bool = False, pose_type: str = 'odometry',
              extra_topic: bool = True, pose_frame: str = 'map', body_frame: str = 'base_link',
              image_frame: str = 'camera', tf_static: Sequence[tuple] = ()) -> Path:
    """Write ``images`` [(t, rgb)] and ``poses`` [(t, x, y, yaw)] (``pose_type`` 'odometry' or
    'pose_stamped'; with 'navsatfix' x, y are lat, lon) to a new rosbag2 directory.

    Poses are stamped in ``pose_frame`` (Odometry child ``body_frame``), images in
    ``image_frame``; ``tf_static`` [(parent, child, (x, y, z), (qx, qy, qz, qw))] is written
    once to /tf_static."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import get_typestore, Stores
    ts = get_typestore(Stores.ROS2_HUMBLE)
    T = ts.types
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    kinds = {'odometry': 'nav_msgs/msg/Odometry', 'pose_stamped': 'geometry_msgs/msg/PoseStamped',
             'navsatfix': 'sensor_msgs/msg/NavSatFix'}
    img_type = 'sensor_msgs/msg/CompressedImage' if compressed else 'sensor_msgs/msg/Image'
    with Writer(Path(path), version=BAG_VERSION, storage_plugin=plugin) as w:
        ci = w.add_connection(image_topic, img_type, typestore=ts) if images else None
        cp = w.add_connection(pose_topic, kinds[pose_type], typestore=ts) if poses else None
        cx = w.add_connection('/chatter', 'std_msgs/msg/String', typestore=ts) \
            if extra_topic else None
        if tf_static:
            t0 = min([t for t, _ in images] + [p[0] for p in poses] or [0.0])
            ct = w.add_connection('/tf_static', 'tf2_msgs/msg/TFMessage', typestore=ts)
            tfs = []
            for parent, child, xyz, quat in tf_static:
                tf = T['geometry_msgs/msg/Transform'](
                    translation=T['geometry_msgs/msg/Vector3'](*map(float, xyz)),
                    rotation=T['geometry_msgs/msg/Quaternion'](*map(float, quat)))
                tfs.append(T['geometry_msgs/msg/TransformStamped'](
                    header=_header(T, t0, parent), child_frame_id=child, transform=tf))
            w.write(ct, int(round(t0 * 1e9)),
                    ts.serialize_cdr(T['tf2_msgs/msg/TFMessage'](transforms=tfs), ct.msgtype))
        events = [(t, 0, v) for t, v in images] + [(p[0], 1, p) for p in poses]
        for t, kind, v in sorted(events, key=lambda e: (e[0], e[1])):
            if kind == 0:
                h = _header(T, t, image_frame)
                if compressed:
                    msg = T[img_type](header=h, format='jpeg',
                                      data=np.frombuffer(encode_compressed(v), np.uint8))
                else:
                    msg = T[img_type](header=h, height=v.shape[0], width=v.shape[1],
                                      encoding='rgb8', is_bigendian=0, step=v.shape[1] * 3,
                                      data=np.ascontiguousarray(v).reshape(-1))
                conn = ci
            else:
                msg = _pose_msg(T, pose_type, v, pose_frame, body_frame)
                conn = cp
            w.write(conn, int(round(t * 1e9)), ts.serialize_cdr(msg, conn.msgtype))
            if cx is not None and kind == 1:
                w.write(cx, int(round(t * 1e9)),
                        ts.serialize_cdr(T['std_msgs/msg/String'](data='hi'), cx.msgtype))
    return Path(path)


def _pose_msg(T, pose_type: str, v, frame: str = 'map', body: str = 'base_link'):
    t, a, b, yaw = v
    h = _header(T, t, frame)
    if pose_type == 'navsatfix':
        st = T['sensor_msgs/msg/NavSatStatus'](status=0, service=1)
        return T['sensor_msgs/msg/NavSatFix'](header=h, status=st, latitude=a, longitude=b,
                                              altitude=0.0, position_covariance=np.zeros(9),
                                              position_covariance_type=0)
    pose = T['geometry_msgs/msg/Pose'](
        position=T['geometry_msgs/msg/Point'](x=a, y=b, z=0.0),
        orientation=T['geometry_msgs/msg/Quaternion'](x=0.0, y=0.0, z=math.sin(yaw / 2),
                                                      w=math.cos(yaw / 2)))
    if pose_type == 'pose_stamped':
        return T['geometry_msgs/msg/PoseStamped'](header=h, pose=pose)
    pwc = T['geometry_msgs/msg/PoseWithCovariance'](pose=pose, covariance=np.zeros(36))
    twist = T['geometry_msgs/msg/TwistWithCovariance'](
        twist=T['geometry_msgs/msg/Twist'](linear=T['geometry_msgs/msg/Vector3'](x=0., y=0., z=0.),
                                           angular=T['geometry_msgs/msg/Vector3'](x=0., y=0.,
                                                                                  z=0.)),
        covariance=np.zeros(36))
    return T['nav_msgs/msg/Odometry'](header=h, child_frame_id=body, pose=pwc, twist=twist)
