"""Image-space effects after rendering: rain streaks, colour saturation, sensor noise."""
from __future__ import annotations

import cv2
import numpy as np

from vpr_ros.world.conditions import Condition


def rain_streaks(img: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Bright slanted motion-blurred streaks plus a slight veil, as from rain on the lens."""
    h, w = img.shape[:2]
    layer = np.zeros((h, w), np.float32)
    n = int(amount * w * h / 700)
    x0 = rng.uniform(-0.1 * w, w, n)
    y0 = rng.uniform(-0.1 * h, h, n)
    length = rng.uniform(0.03, 0.08, n) * h
    slant = 0.25 + rng.normal(0, 0.05, n)
    val = rng.uniform(0.15, 0.45, n)
    for x, y, ln, s, v in zip(x0, y0, length, slant, val):
        cv2.line(layer, (int(x), int(y)), (int(x + s * ln), int(y + ln)), float(v), 1, cv2.LINE_AA)
    layer = cv2.GaussianBlur(layer, (3, 3), 0)
    out = img.astype(np.float32) * 0.92 + 255.0 * 0.05
    out = cv2.GaussianBlur(out, (3, 3), 0.6)
    return out + layer[..., None] * 255.0 * 0.5


def apply(img: np.ndarray, cond: Condition, seed: int = 0) -> np.ndarray:
    """Post-process a rendered uint8 RGB frame; ``seed`` makes the noise reproducible."""
    rng = np.random.default_rng([int(seed) & 0x7FFFFFFF, 31])
    out = img.astype(np.float32)
    if cond.saturation != 1.0:
        grey = out.mean(axis=2, keepdims=True)
        out = grey + (out - grey) * cond.saturation
    if cond.rain > 0:
        out = rain_streaks(out, rng, cond.rain)
    if cond.noise > 0:
        out += rng.normal(0.0, cond.noise, out.shape).astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
