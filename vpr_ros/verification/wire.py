"""Local features in a vpr_ros/Descriptor message's flat fields, and back (no ROS imports).

The query_encoder packs what it extracted; the matcher unpacks and checks it (a message from
another method, or with lengths that do not fit, is refused with the reason).
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from vpr_ros.verification.features import descriptor_width, LocalFeatures, METHODS


def pack(method: str, feats: LocalFeatures) -> Dict:
    """{local_method, keypoints, local_descriptors, image_width, image_height} of ``feats``."""
    return {'local_method': method,
            'keypoints': np.asarray(feats.xy, np.float32).reshape(-1),
            'local_descriptors': np.asarray(feats.desc, np.uint8).reshape(-1).tobytes(),
            'image_width': int(feats.size[0]), 'image_height': int(feats.size[1])}


def unpack(method: str, keypoints, descriptors, width: int, height: int,
           expected_method: str) -> LocalFeatures:
    """LocalFeatures of the message fields; ValueError saying why they cannot be used."""
    if method != expected_method:
        raise ValueError(f'local features of method {method!r}, the map stores '
                         f'{expected_method!r}')
    if method not in METHODS:
        raise ValueError(f'unknown local feature method {method!r}')
    xy = np.asarray(keypoints, np.float32).reshape(-1)
    raw = descriptors if isinstance(descriptors, (bytes, bytearray)) else bytes(
        np.asarray(descriptors, np.uint8))
    width_b = descriptor_width(method)
    if xy.size % 2 or len(raw) != (xy.size // 2) * width_b:
        raise ValueError(f'{xy.size} keypoint values and {len(raw)} descriptor bytes do not '
                         f'make whole {width_b}-byte rows of x, y keypoints')
    if not np.all(np.isfinite(xy)):
        raise ValueError('keypoints are not finite')
    desc = np.frombuffer(raw, np.uint8).reshape(-1, width_b)
    return LocalFeatures(xy.reshape(-1, 2), desc, (int(width), int(height)))
