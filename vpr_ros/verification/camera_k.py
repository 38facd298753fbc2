"""The query camera's intrinsics in a vpr_ros/Descriptor's ``camera_k``, and back (no ROS).

The query_encoder fills ``camera_k`` from the latest sensor_msgs/CameraInfo, scaled to the
image the keypoints were extracted from; the matcher decodes it into the ``query_K`` of the
metric pose. Nine zeros mean unknown (the matcher then falls back to the map camera's K).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

UNKNOWN_K = (0.0,) * 9


def intrinsics_problem(K: np.ndarray) -> str:
    """Why the (3, 3) ``K`` is not a pinhole calibration ('' when it is one)."""
    if not np.all(np.isfinite(K)):
        return 'not finite'
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        return f'fx {K[0, 0]:g} and fy {K[1, 1]:g} must be > 0'
    if not np.allclose(K[2], (0.0, 0.0, 1.0)):
        return f'last row {K[2].tolist()} is not (0, 0, 1)'
    return ''


def scaled_camera_k(k: Sequence[float], info_size: Tuple[int, int],
                    image_size: Tuple[int, int]) -> Optional[np.ndarray]:
    """(3, 3) K of a CameraInfo's ``k`` (9 values, row-major) for an image of ``image_size``
    (width, height), when the CameraInfo was for ``info_size``: fx and cx scale with the width
    ratio, fy and cy with the height ratio. None when K is not a calibration (all zeros, not
    finite, fx or fy <= 0) or a size is not positive."""
    try:
        K = np.array(k, np.float64).reshape(3, 3)
    except (TypeError, ValueError):
        return None
    (iw, ih), (w, h) = info_size, image_size
    if min(iw, ih, w, h) <= 0 or intrinsics_problem(K):
        return None
    sx, sy = w / iw, h / ih
    K[0, 0] *= sx
    K[0, 2] *= sx
    K[0, 1] *= sx  # skew is in x pixels
    K[1, 1] *= sy
    K[1, 2] *= sy
    return K


def camera_k_field(camera_info: Optional[dict], image_size: Tuple[int, int]) -> List[float]:
    """The nine ``camera_k`` values for an image of ``image_size`` (width, height) from a
    camera_info summary ({width, height, k}, vpr_ros.nodes.conversions.camera_info_summary);
    zeros when there is none or its K is unusable."""
    if not camera_info:
        return list(UNKNOWN_K)
    K = scaled_camera_k(camera_info.get('k', ()),
                        (int(camera_info.get('width', 0)), int(camera_info.get('height', 0))),
                        image_size)
    return list(UNKNOWN_K) if K is None else [float(v) for v in K.reshape(-1)]


def decode_camera_k(values) -> Tuple[Optional[np.ndarray], str]:
    """(K, problem) of a message's ``camera_k``: the (3, 3) K; (None, '') when all zeros
    (unknown); (None, why) when it cannot be used (not 9 values, not finite, fx or fy <= 0)."""
    try:
        flat = np.asarray(values, np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        return None, f'camera_k is not numeric: {exc}'
    if flat.size != 9:
        return None, f'camera_k has {flat.size} values, not 9'
    if not np.any(flat):
        return None, ''
    K = flat.reshape(3, 3)
    problem = intrinsics_problem(K)
    return (None, f'camera_k {problem}') if problem else (K, '')
