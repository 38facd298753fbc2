"""Adverse-condition augmentations for training place-recognition models.

Photometric jitter alone leaves a model at the mercy of conditions its training images do not
cover. These transforms imitate what a robot's camera meets at run time, on one float image
(3, h, w) in [0, 1]: low light (gamma, gain and sensor noise), haze (airlight blend), defocus
and motion blur. ``adverse(x, rng, p)`` applies one of them, chosen at random, with
probability ``p``; ``pick_scale`` chooses a per-batch input size for multi-scale training.
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F


def low_light(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Darken with a gamma curve and a gain, tint towards blue, add shot-like noise."""
    gamma, gain = rng.uniform(1.2, 2.2), rng.uniform(0.35, 0.8)
    y = x.clamp(0, 1).pow(gamma) * gain
    tint = torch.tensor([rng.uniform(0.8, 1.0), rng.uniform(0.85, 1.0), 1.0],
                        dtype=x.dtype).view(3, 1, 1)
    noise = torch.from_numpy(rng.normal(0.0, rng.uniform(0.005, 0.03), x.shape[-2:]))
    return y * tint + noise.to(x.dtype)[None]


def haze(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Blend with a grey airlight, stronger towards the top of the image (distance)."""
    h = x.shape[-2]
    airlight = rng.uniform(0.55, 0.9)
    t_top, t_bottom = rng.uniform(0.15, 0.6), rng.uniform(0.6, 0.95)
    t = torch.linspace(t_top, t_bottom, h, dtype=x.dtype).view(1, h, 1)
    return x * t + airlight * (1 - t)


def _kernel_blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    k = kernel / kernel.sum()
    kh, kw = k.shape
    weight = k.to(x.dtype).expand(3, 1, kh, kw)
    padded = F.pad(x[None], (kw // 2, kw // 2, kh // 2, kh // 2), mode='replicate')
    return F.conv2d(padded, weight, groups=3)[0]


def defocus(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Gaussian blur, sigma 0.6-1.8 px."""
    sigma = rng.uniform(0.6, 1.8)
    r = int(math.ceil(2.5 * sigma))
    g = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float64) ** 2 / (2 * sigma ** 2))
    return _kernel_blur(x, torch.outer(g, g))


def motion_blur(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A straight motion streak of 3-9 px at a random angle."""
    length = int(rng.integers(3, 10)) | 1
    angle = rng.uniform(0, math.pi)
    k = torch.zeros(length, length, dtype=torch.float64)
    c = length // 2
    for s in np.linspace(-c, c, 2 * length):
        k[int(round(c + s * math.sin(angle))), int(round(c + s * math.cos(angle)))] = 1.0
    return _kernel_blur(x, k)


TRANSFORMS = (low_light, haze, defocus, motion_blur)


def adverse(x: torch.Tensor, rng: np.random.Generator, p: float) -> torch.Tensor:
    """With probability ``p`` one adverse transform (uniformly chosen) of ``x``, clamped."""
    if p <= 0 or rng.random() >= p:
        return x
    return TRANSFORMS[int(rng.integers(len(TRANSFORMS)))](x, rng).clamp(0, 1)


def pick_scale(size: Sequence[int], scales: Sequence[float], rng: np.random.Generator,
               multiple: int = 8) -> Tuple[int, int]:
    """(h, w) of one batch: ``size`` times a scale drawn from ``scales`` (none: ``size``),
    rounded to ``multiple`` pixels."""
    h, w = int(size[0]), int(size[1])
    if not scales:
        return h, w
    s = float(scales[int(rng.integers(len(scales)))])
    return (max(multiple, int(round(h * s / multiple)) * multiple),
            max(multiple, int(round(w * s / multiple)) * multiple))
