"""Local features of one image (OpenCV): keypoint positions and uint8 descriptors.

Methods: ``sift`` and ``rootsift`` (SIFT keypoints; RootSIFT is SIFT with its descriptors
L1-normalised and square-rooted at match time, so both store the same uint8 SIFT rows), ``orb``
and ``akaze`` (binary, compared by Hamming distance). Every method stores uint8 descriptors and
float32 pixel positions, at most ``max_keypoints`` per image (the strongest responses).
"""
from __future__ import annotations

import dataclasses
from typing import Dict

import numpy as np

METHODS = ('rootsift', 'sift', 'orb', 'akaze')
BINARY = ('orb', 'akaze')


@dataclasses.dataclass
class LocalFeatures:
    """Keypoints of one image: ``xy`` (N, 2) float32 pixels, ``desc`` (N, D) uint8."""

    xy: np.ndarray
    desc: np.ndarray
    size: tuple = (0, 0)  # (width, height) of the image they were found in

    def __len__(self) -> int:
        return int(self.xy.shape[0])


def _detector(method: str, max_keypoints: int):
    import cv2
    if method in ('sift', 'rootsift'):
        return cv2.SIFT_create(nfeatures=max_keypoints, contrastThreshold=0.02)
    if method == 'orb':
        return cv2.ORB_create(nfeatures=max_keypoints, fastThreshold=10)
    if method == 'akaze':
        return cv2.AKAZE_create(threshold=0.0005)
    raise ValueError(f'unknown local feature method {method!r}; use one of {METHODS}')


class FeatureExtractor:
    """``extractor(rgb_or_gray) -> LocalFeatures`` with one OpenCV detector kept alive."""

    def __init__(self, method: str = 'rootsift', max_keypoints: int = 512):
        if method not in METHODS:
            raise ValueError(f'unknown local feature method {method!r}; use one of {METHODS}')
        if int(max_keypoints) < 8:
            raise ValueError(f'max_keypoints must be >= 8, got {max_keypoints}')
        self.method, self.max_keypoints = method, int(max_keypoints)
        self._det = _detector(method, self.max_keypoints)

    @property
    def binary(self) -> bool:
        """Whether descriptors are compared by Hamming distance."""
        return self.method in BINARY

    def __call__(self, image: np.ndarray) -> LocalFeatures:
        import cv2
        img = np.asarray(image)
        if img.ndim == 3:
            img = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2GRAY)
        if img.dtype != np.uint8:
            img = np.clip(img, 0, 255).astype(np.uint8)
        kps, desc = self._det.detectAndCompute(img, None)
        h, w = img.shape[:2]
        if desc is None or not kps:
            return empty_features(self.method, (w, h))
        resp = np.array([k.response for k in kps], np.float32)
        keep = np.argsort(-resp, kind='stable')[:self.max_keypoints]
        xy = np.array([kps[i].pt for i in keep], np.float32).reshape(-1, 2)
        if desc.dtype != np.uint8:  # SIFT: floats in [0, 255]
            desc = np.clip(np.rint(desc), 0, 255).astype(np.uint8)
        return LocalFeatures(xy, np.ascontiguousarray(desc[keep]), (w, h))


def descriptor_width(method: str) -> int:
    """Bytes per descriptor of ``method``."""
    return {'sift': 128, 'rootsift': 128, 'orb': 32, 'akaze': 61}[method]


def empty_features(method: str, size=(0, 0)) -> LocalFeatures:
    """No keypoints (a blank or textureless image)."""
    return LocalFeatures(np.zeros((0, 2), np.float32),
                         np.zeros((0, descriptor_width(method)), np.uint8), tuple(size))


def root_sift(desc: np.ndarray) -> np.ndarray:
    """(N, 128) float32 RootSIFT of uint8 SIFT rows (L1-normalise, square root): unit L2 rows."""
    d = np.asarray(desc, np.float32)
    d = d / np.maximum(d.sum(axis=1, keepdims=True), 1e-6)
    return np.sqrt(d)


def as_matchable(desc: np.ndarray, method: str) -> np.ndarray:
    """Descriptors in the form the matcher compares: RootSIFT / L2-normalised SIFT floats, or
    the uint8 rows of a binary method."""
    if method in BINARY:
        return np.ascontiguousarray(desc, np.uint8)
    if method == 'rootsift':
        return root_sift(desc)
    d = np.asarray(desc, np.float32)
    return d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)


def describe(method: str, max_keypoints: int) -> Dict:
    """The settings that make stored features comparable with a query's."""
    return {'method': method, 'max_keypoints': int(max_keypoints),
            'descriptor_bytes': descriptor_width(method)}
