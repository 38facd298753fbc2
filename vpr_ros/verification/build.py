"""Local features of a map's images at build time (``vpr-ros build-map``, on by default).

A second pass over the build's source items: each encoded image is decoded again, its features
extracted (the map's method, at most ``max_keypoints``) and all of them published in one file
(vpr_ros.verification.store) next to the map's own files, with the camera intrinsics the source
knows (``source.camera``: a vpr_ros.io.camera_file dict, or None).
"""
from __future__ import annotations

import logging
import time
from typing import Dict

from vpr_ros.verification.features import FeatureExtractor
from vpr_ros.verification.store import LocalFeatureWriter

log = logging.getLogger(__name__)
DEFAULT_METHOD = 'rootsift'
DEFAULT_MAX_KEYPOINTS = 512


def build_local_features(source, place_of_key: Dict[int, int], out, encoder: str = '',
                         method: str = DEFAULT_METHOD,
                         max_keypoints: int = DEFAULT_MAX_KEYPOINTS) -> Dict:
    """Extract and save the features of the items ``place_of_key`` names (source item index ->
    map place id); returns a summary (places, keypoints, seconds, file)."""
    from vpr_ros.imaging import ImageDecodeError, read_image_file
    t0 = time.time()
    extract = FeatureExtractor(method, max_keypoints)
    camera = getattr(source, 'camera', None)
    intrinsics = None if not camera else tuple(camera[k] for k in ('fx', 'fy', 'cx', 'cy'))
    writer = LocalFeatureWriter(method, max_keypoints, encoder=encoder,
                                camera_pitch_deg=float((camera or {}).get('pitch_deg', 0.0)))
    misfit = 0
    for key, item in enumerate(source):
        pid = place_of_key.get(key)
        if pid is None:
            continue
        try:
            rgb = read_image_file(item.image) if isinstance(item.image, str) else item.image
        except (ImageDecodeError, OSError) as exc:
            log.warning('no local features for place %d: %s', pid, exc)
            continue
        feats = extract(rgb)
        fits = _fits(camera, feats.size)
        misfit += intrinsics is not None and not fits
        writer.add(pid, feats, intrinsics if fits else None)
    if misfit:
        log.warning('%d images are not %sx%s, the size of the camera intrinsics: no intrinsics '
                    'stored for them (no metric pose there)', misfit, camera.get('width'),
                    camera.get('height'))
    path = writer.save(out)
    kps = sum(len(f) for f, _ in writer.rows.values())
    return {'places': len(writer.rows), 'keypoints': kps, 'method': method,
            'max_keypoints': max_keypoints, 'intrinsics': intrinsics is not None,
            'seconds': round(time.time() - t0, 3), 'file': path.name,
            'bytes': path.stat().st_size}


def _fits(camera, size) -> bool:
    """Whether an image of ``size`` (width, height) has the camera's size (True when the
    camera does not say its size)."""
    if not camera or 'width' not in camera or 'height' not in camera:
        return True
    return (int(size[0]), int(size[1])) == (int(camera['width']), int(camera['height']))
