"""Camera intrinsics from a bag's sensor_msgs/CameraInfo topic (no ROS needed).

The topic is the one beside the image topic: ``camera_info`` in the image topic's namespace or
a parent of it (``/cam/image_raw/compressed`` -> ``/cam/image_raw/camera_info``,
``/cam/camera_info``, ``/camera_info``). Its first readable message gives K, width and height,
in the vpr_ros.io.camera_file dict layout (fx, fy, cx, cy, width, height) plus ``topic``;
later messages that differ are warned about once (the first is kept).
"""
from __future__ import annotations

import logging
import math
from typing import Dict, Optional

import numpy as np

from vpr_ros.io.bag_poses import norm_type

log = logging.getLogger(__name__)
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'


def camera_info_topic_beside(topics: Dict[str, str], image_topic: str) -> Optional[str]:
    """The CameraInfo topic of ``image_topic``'s camera in ``topics`` ({topic: msgtype}); None
    when there is none in its namespace or a parent one."""
    parts = [p for p in (image_topic or '').split('/') if p]
    for n in range(len(parts), -1, -1):
        topic = '/' + '/'.join(parts[:n] + ['camera_info'])
        if norm_type(topics.get(topic, '')) == CAMERA_INFO_TYPE:
            return topic
    return None


def _field(msg, name: str):
    """A CameraInfo field under its ROS 2 (lower case) or ROS 1 (upper case) name."""
    value = getattr(msg, name, None)
    return getattr(msg, name.upper(), None) if value is None else value


def camera_from_msg(msg) -> Optional[Dict[str, float]]:
    """fx, fy, cx, cy, width, height of one CameraInfo; None when K is not a calibration (all
    zeros for an uncalibrated camera, not finite, or a size of 0)."""
    try:
        k = np.asarray(_field(msg, 'k'), np.float64).reshape(9)
        width, height = int(msg.width), int(msg.height)
    except (TypeError, ValueError, AttributeError):
        return None
    fx, fy, cx, cy = float(k[0]), float(k[4]), float(k[2]), float(k[5])
    if not all(math.isfinite(v) for v in (fx, fy, cx, cy)) or fx <= 0 or fy <= 0:
        return None
    if width <= 0 or height <= 0:
        return None
    return {'fx': fx, 'fy': fy, 'cx': cx, 'cy': cy, 'width': width, 'height': height}


def _distorted(msg) -> bool:
    d = _field(msg, 'd')
    try:
        return d is not None and bool(np.any(np.abs(np.asarray(d, np.float64)) > 1e-9))
    except (TypeError, ValueError):
        return False


def read_bag_camera(reader) -> Optional[Dict[str, float]]:
    """The intrinsics of ``reader``'s (vpr_ros.io.bags.BagReader) image topic from the
    CameraInfo topic beside it; None (and an info log line saying why) when the bag has none
    or its K is not usable. Warnings go through ``reader._warn`` (counted in its warnings)."""
    topic = camera_info_topic_beside(reader.topics, reader.image_topic)
    if topic is None:
        others = sorted(t for t, m in reader.topics.items() if norm_type(m) == CAMERA_INFO_TYPE)
        log.info('%s: no sensor_msgs/CameraInfo topic beside %s%s: no camera intrinsics from '
                 'the bag', reader.path, reader.image_topic,
                 f' (not used: {", ".join(others)})' if others else '')
        return None
    camera, changed, count = None, 0, 0
    for _msgtype, _stamp, msg in reader._messages(topic):
        count += 1
        cam = camera_from_msg(msg)
        if camera is None:
            if cam is None:
                continue
            camera = dict(cam, topic=topic)
            if _distorted(msg):
                reader._warn('%s: distortion coefficients are not zero; the stored K ignores '
                             'them (use a rectified image topic for the metric pose)', topic)
        elif cam is None or any(not math.isclose(cam[k], camera[k], rel_tol=1e-6)
                                for k in ('fx', 'fy', 'cx', 'cy', 'width', 'height')):
            changed += 1
    if camera is None:
        log.info('%s: %s has %d messages, none with a calibrated K: no camera intrinsics from '
                 'the bag', reader.path, topic, count)
        return None
    if changed:
        reader._warn('%s: %d of %d CameraInfo messages differ from the first (K or size); '
                     'the first is used', topic, changed, count)
    log.info('%s: camera intrinsics from %s: fx=%.2f fy=%.2f cx=%.2f cy=%.2f (%dx%d)',
             reader.path, topic, camera['fx'], camera['fy'], camera['cx'], camera['cy'],
             camera['width'], camera['height'])
    return camera


def camera_matrix(camera: Optional[Dict[str, float]], size=None) -> Optional[np.ndarray]:
    """(3, 3) K of a camera dict; None without one, or when ``size`` (width, height) of the
    image differs from the camera's width/height (K would not fit the image)."""
    if not camera:
        return None
    if size is not None and 'width' in camera and 'height' in camera \
            and (int(size[0]), int(size[1])) != (int(camera['width']), int(camera['height'])):
        return None
    return np.array([[camera['fx'], 0.0, camera['cx']], [0.0, camera['fy'], camera['cy']],
                     [0.0, 0.0, 1.0]], np.float64)
