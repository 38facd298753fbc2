"""``camera.json`` of an image folder: the pinhole intrinsics its images were taken with.

Written by ``vpr-ros world`` next to its VG ``database/`` and ``queries/`` folders and read by
the map sources, so a map stores the intrinsics its metric pose needs. Fields: fx, fy, cx, cy
(pixels), width, height, and optionally pitch_deg (camera tilt, up positive).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, Optional

NAME = 'camera.json'


def pinhole_from_fov(fovy_deg: float, width: int, height: int) -> Dict[str, float]:
    """Square-pixel intrinsics of a vertical field of view ``fovy_deg`` at width x height."""
    f = 0.5 * height / math.tan(math.radians(fovy_deg) / 2.0)
    # OpenCV keypoints put pixel centres at integer coordinates
    return {'fx': f, 'fy': f, 'cx': width / 2.0 - 0.5, 'cy': height / 2.0 - 0.5,
            'width': int(width), 'height': int(height)}


def write_camera_file(folder, camera: Dict[str, float]) -> Path:
    """Write ``<folder>/camera.json``."""
    path = Path(folder) / NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(camera, indent=2, sort_keys=True))
    return path


def read_camera_file(*folders) -> Optional[Dict[str, float]]:
    """The first ``camera.json`` found in ``folders`` (None: none, or not valid intrinsics)."""
    for folder in folders:
        path = Path(folder) / NAME
        if not path.is_file():
            continue
        try:
            cam = json.loads(path.read_text())
            vals = [float(cam[k]) for k in ('fx', 'fy', 'cx', 'cy')]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return cam if all(math.isfinite(v) for v in vals) and vals[0] > 0 < vals[1] else None
    return None
