"""Adverse-condition augmentations of the gallery trainer (vpr_ros.training.weather_augment)."""
import numpy as np
import pytest
import torch

from vpr_ros.training.gallery_finetune import augment
from vpr_ros.training.weather_augment import (adverse, defocus, haze, low_light, motion_blur,
                                              pick_scale)


def _scene(h=48, w=64):
    """A structured image: bright left half, a dark bar, gradient rows."""
    x = torch.zeros(3, h, w, dtype=torch.float32)
    x[:, :, : w // 2] = 0.8
    x[:, h // 3: h // 3 + 4, :] = 0.1
    x += torch.linspace(0, 0.15, h).view(1, h, 1)
    return x.clamp(0, 1)


def test_low_light_darkens_and_adds_noise():
    x = _scene()
    y = low_light(x, np.random.default_rng(0))
    assert y.shape == x.shape
    assert float(y.mean()) < 0.6 * float(x.mean())
    flat = y[:, :, : 10].reshape(3, -1)   # a flat region of x gets noise
    assert float(flat.std(dim=1).max()) > 0


def test_haze_lifts_blacks_more_at_the_top():
    x = torch.zeros(3, 40, 40)
    y = haze(x, np.random.default_rng(1))
    assert float(y[:, 0].mean()) > float(y[:, -1].mean()) > 0


@pytest.mark.parametrize('blur', [defocus, motion_blur])
def test_blurs_keep_the_mean_and_soften_edges(blur):
    x = _scene()
    y = blur(x, np.random.default_rng(2))
    assert y.shape == x.shape
    assert abs(float(y.mean()) - float(x.mean())) < 0.02
    edge = lambda t: float((t[:, :, 1:] - t[:, :, :-1]).abs().max())  # noqa: E731
    assert edge(y) < edge(x)


def test_adverse_probability_and_range():
    x = _scene()
    rng = np.random.default_rng(3)
    assert adverse(x, rng, 0.0) is x
    outs = [adverse(x, rng, 1.0) for _ in range(20)]
    assert all(float(o.min()) >= 0 and float(o.max()) <= 1 for o in outs)
    assert sum(not torch.equal(o, x) for o in outs) == 20
    kept = sum(adverse(x, rng, 0.3) is x for _ in range(400))
    assert 230 < kept < 330


def test_pick_scale_rounds_to_multiples():
    rng = np.random.default_rng(4)
    assert pick_scale((168, 224), (), rng) == (168, 224)
    sizes = {pick_scale((168, 224), (0.75, 1.0, 1.25), rng) for _ in range(60)}
    assert sizes == {(128, 168), (168, 224), (208, 280)}
    assert all(h % 8 == 0 and w % 8 == 0 for h, w in sizes)


def test_trainer_augment_is_seeded_and_sized():
    imgs = [np.random.default_rng(i).integers(0, 255, (60, 80, 3), np.uint8) for i in range(3)]
    a = augment(imgs, (64, 96), (0.5,) * 3, (0.5,) * 3, 0.6, 0.3, np.random.default_rng(5), 0.5)
    b = augment(imgs, (64, 96), (0.5,) * 3, (0.5,) * 3, 0.6, 0.3, np.random.default_rng(5), 0.5)
    assert a.shape == (3, 3, 64, 96)
    assert torch.equal(a, b)
