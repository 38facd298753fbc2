"""sensor_msgs <-> numpy, through cv_bridge where the ROS distro provides it, else OpenCV."""
from __future__ import annotations

import numpy as np

from vpr_ros import imaging
from vpr_ros.imaging import ImageDecodeError

try:  # cv_bridge for ROS 2 ships with the distros, not on PyPI
    from cv_bridge import CvBridge, CvBridgeError
    _BRIDGE = CvBridge()
except ImportError:  # pragma: no cover - depends on the machine
    _BRIDGE = None


def stamp_seconds(stamp) -> float:
    """builtin_interfaces/Time -> float seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def image_to_rgb(msg, max_pixels=imaging.DEFAULT_MAX_PIXELS) -> np.ndarray:
    """sensor_msgs/Image -> uint8 RGB (H,W,3); ImageDecodeError explains a bad image.

    Size, step and data length are checked against each other and ``max_pixels`` before
    anything is allocated (cv_bridge trusts them)."""
    imaging.check_raw_layout(msg.encoding, msg.height, msg.width, msg.step, len(msg.data),
                             max_pixels)
    if _BRIDGE is not None:
        try:
            return np.ascontiguousarray(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding='rgb8'))
        except (CvBridgeError, TypeError, ValueError) as exc:
            raise ImageDecodeError(f'cv_bridge: {exc}') from None
    return imaging.decode_raw(msg.encoding, msg.height, msg.width, msg.step, msg.data,
                              bool(msg.is_bigendian), max_pixels)


def compressed_to_rgb(msg, max_pixels=imaging.DEFAULT_MAX_PIXELS, min_size=None) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG/PNG) -> uint8 RGB (H,W,3), header size checked
    against ``max_pixels`` before decoding; a JPEG at a reduced size still covering
    ``min_size`` = (h, w) when given (imaging.decode_compressed)."""
    return imaging.decode_compressed(msg.format, msg.data, max_pixels, min_size)


def rgb_to_image(rgb: np.ndarray, encoding: str = 'rgb8', msg_type=None,
                 bigendian: bool = False):
    """uint8 RGB -> sensor_msgs/Image in ``encoding`` (for publishers, tests and replay)."""
    from sensor_msgs.msg import Image
    msg = (msg_type or Image)()
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(bigendian)
    data = imaging.encode_raw(rgb, encoding, bigendian)
    msg.step = len(data) // msg.height
    msg.data = data
    return msg


def rgb_to_compressed(rgb: np.ndarray, fmt: str = 'jpeg'):
    """uint8 RGB -> sensor_msgs/CompressedImage."""
    from sensor_msgs.msg import CompressedImage
    msg = CompressedImage()
    msg.format = fmt
    msg.data = imaging.encode_compressed(rgb, fmt)
    return msg


TRANSPORTS = ('raw', 'compressed')


def transport_topic(image_topic: str, transport: str) -> str:
    """The topic image_transport uses for ``transport`` of the base topic ``image_topic``
    (raw: the base topic itself; compressed: ``<image_topic>/compressed``)."""
    if transport not in TRANSPORTS:
        raise ValueError(f'transport {transport!r}: use one of {", ".join(TRANSPORTS)}')
    base = image_topic.rstrip('/')
    if not base:
        raise ValueError('image_topic is empty: set the camera base topic (e.g. '
                         'camera/image_raw)')
    return base if transport == 'raw' else f'{base}/compressed'


def camera_info_summary(msg) -> dict:
    """The parts of a sensor_msgs/CameraInfo shown in query_encoder's ~/stats."""
    return {'width': int(msg.width), 'height': int(msg.height),
            'k': [float(v) for v in msg.k], 'frame_id': msg.header.frame_id}
