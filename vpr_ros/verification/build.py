"""Local features of a map's images at build time (``vpr-ros build-map``, on by default).

``vpr-ros build-map`` extracts them from the image its encoder decodes (one decode per image,
vpr_ros.mapstore.build_encoders) and checkpoints them with the descriptors (``pack`` /
``unpack``); ``write_local_features`` then publishes all of them in one file
(vpr_ros.verification.store) next to the map's own files, with the camera intrinsics the source
knows (``source.camera``: a vpr_ros.io.camera_file dict, or None). ``build_local_features`` is
the same from a separate pass over a source's items (each image decoded again).
"""
from __future__ import annotations

import logging
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from vpr_ros.verification.features import FeatureExtractor, LocalFeatures
from vpr_ros.verification.store import LocalFeatureWriter

log = logging.getLogger(__name__)
DEFAULT_METHOD = 'rootsift'
DEFAULT_MAX_KEYPOINTS = 512


def default_extractor() -> FeatureExtractor:
    """The extractor of ``vpr-ros build-map`` (DEFAULT_METHOD, DEFAULT_MAX_KEYPOINTS)."""
    return FeatureExtractor(DEFAULT_METHOD, DEFAULT_MAX_KEYPOINTS)


def build_local_features(source, place_of_key: Dict[int, int], out, encoder: str = '',
                         method: str = DEFAULT_METHOD,
                         max_keypoints: int = DEFAULT_MAX_KEYPOINTS) -> Dict:
    """Extract and save the features of the items ``place_of_key`` names (source item index ->
    map place id); returns a summary (places, keypoints, seconds, file)."""
    t0 = time.time()
    camera = getattr(source, 'camera', None)
    feats = extract_again(source, place_of_key, FeatureExtractor(method, max_keypoints))
    return write_local_features(feats, camera, out, encoder, method, max_keypoints, t0)


def save_build_features(source, features: Dict[int, LocalFeatures],
                        place_of_key: Dict[int, int], out, encoder: str = '') -> Dict:
    """Save the features a map build extracted while encoding (``features``: source item index
    -> features) for the items ``place_of_key`` names; items without (checkpointed by a build
    with them off, or by an older vpr_ros) are decoded again for theirs."""
    t0 = time.time()
    camera = getattr(source, 'camera', None)
    feats = {pid: features[k] for k, pid in place_of_key.items() if k in features}
    missing = {k: pid for k, pid in place_of_key.items() if k not in features}
    if missing:
        log.info('local features: decoding %d checkpointed images again', len(missing))
        feats.update(extract_again(source, missing, default_extractor()))
    summary = write_local_features(feats, camera, out, encoder, t0=t0)
    summary['images_decoded_again'] = len(missing)
    return summary


def extract_again(source, place_of_key: Dict[int, int], extract) -> Dict[int, LocalFeatures]:
    """Place id -> features of the items ``place_of_key`` names, each image decoded here (a
    place whose image cannot be decoded gets none)."""
    from vpr_ros.imaging import ImageDecodeError, read_image_file
    feats = {}
    for key, item in enumerate(source):
        pid = place_of_key.get(key)
        if pid is None:
            continue
        try:
            rgb = read_image_file(item.image) if isinstance(item.image, str) else item.image
        except (ImageDecodeError, OSError) as exc:
            log.warning('no local features for place %d: %s', pid, exc)
            continue
        feats[pid] = extract(rgb)
    return feats


def write_local_features(features: Dict[int, LocalFeatures], camera, out, encoder: str = '',
                         method: str = DEFAULT_METHOD,
                         max_keypoints: int = DEFAULT_MAX_KEYPOINTS,
                         t0: Optional[float] = None) -> Dict:
    """Save ``features`` (place id -> features) in ``<out>/local_features.npz`` with the
    ``camera`` intrinsics (only for images of the camera's size); returns the summary."""
    t0 = time.time() if t0 is None else t0
    intrinsics = None if not camera else tuple(camera[k] for k in ('fx', 'fy', 'cx', 'cy'))
    writer = LocalFeatureWriter(method, max_keypoints, encoder=encoder,
                                camera_pitch_deg=float((camera or {}).get('pitch_deg', 0.0)))
    misfit = 0
    for pid, feats in features.items():
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


def pack(keys: Sequence[int], feats: Sequence[Optional[LocalFeatures]]) -> Dict[str, np.ndarray]:
    """The ``lf_*`` arrays of a build checkpoint holding ``feats[i]`` of ``keys[i]`` (None: no
    features, e.g. a build without them); ``unpack`` reads them back."""
    have = [(int(k), f) for k, f in zip(keys, feats) if f is not None]
    width = have[0][1].desc.shape[1] if have else 0
    return {'lf_keys': np.array([k for k, _ in have], np.int64),
            'lf_counts': np.array([len(f) for _, f in have], np.int64),
            'lf_xy': np.concatenate([f.xy for _, f in have] or [np.zeros((0, 2), np.float32)]),
            'lf_desc': np.concatenate([f.desc for _, f in have]
                                      or [np.zeros((0, width), np.uint8)]),
            'lf_sizes': np.array([f.size for _, f in have], np.int64).reshape(-1, 2)}


def unpack(z) -> Dict[int, LocalFeatures]:
    """Key -> features of a checkpoint's ``lf_*`` arrays (``z``: its open npz); {} when it has
    none (written without local features, or by an older vpr_ros)."""
    if 'lf_keys' not in z.files:
        return {}
    keys: List[int] = z['lf_keys'].tolist()
    ends = np.cumsum(z['lf_counts']).tolist()
    xy, desc, sizes = z['lf_xy'], z['lf_desc'], z['lf_sizes'].tolist()
    return {k: LocalFeatures(xy[a:b], desc[a:b], (int(s[0]), int(s[1])))
            for k, a, b, s in zip(keys, [0] + ends[:-1], ends, sizes)}
