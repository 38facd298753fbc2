"""No-place frames taught by the gallery (training/degenerate_frames.py): every kind is a valid
frame, the bank holds the gallery's own descriptors of them, and the trainer appends them to
each batch with those targets (distillation and the other losses alike)."""
import dataclasses

import numpy as np
import pytest
import torch

from vpr_ros.training import asym
from vpr_ros.training.degenerate_frames import build_bank, KINDS, synthetic_frame


def test_every_kind_is_an_image_of_the_requested_size():
    rng = np.random.default_rng(0)
    for kind in KINDS:
        img = synthetic_frame(kind, (30, 40), rng)
        assert img.shape == (30, 40, 3) and img.dtype == np.uint8, kind
    assert synthetic_frame('uniform', (8, 8), rng).std(axis=(0, 1)).max() == 0.0
    assert synthetic_frame('noise', (64, 64), rng).std() > 50
    with pytest.raises(ValueError, match='kind'):
        synthetic_frame('stripes', (8, 8), rng)


@pytest.fixture(scope='module')
def gallery():
    from vpr_ros.models import create_model
    torch.manual_seed(0)
    return create_model('efficientnet_lite0_gem', pretrained=False, input_size=(48, 64)).eval()


def test_bank_holds_the_gallerys_descriptors_at_the_query_size(gallery):
    bank = build_bank(gallery, (24, 32), n=9, seed=1)
    assert bank.images.shape == (9, 24, 32, 3) and bank.gallery.shape == (9, gallery.dim)
    assert set(bank.kinds) == set(KINDS)
    # the targets are what the gallery says of the full-size frames
    rng = np.random.default_rng(1)
    full = [synthetic_frame(k, (48, 64), rng) for k in bank.kinds]
    np.testing.assert_allclose(bank.gallery, gallery.encode(np.stack(full)), atol=1e-5)
    imgs, descs = bank.sample(5, np.random.default_rng(0))
    assert imgs.shape == (5, 24, 32, 3) and descs.shape == (5, gallery.dim)
    assert bank.summary()['frames'] == 9
    with pytest.raises(ValueError):
        build_bank(gallery, (24, 32), n=0)


@pytest.mark.parametrize('method', ['distill', 'asym'])
def test_trainer_appends_them_to_every_batch(gallery, method):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (8, 24, 32, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(4), 2)
    feats = rng.standard_normal((8, gallery.dim)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    cfg = asym.AsymTrainConfig(query_model='efficientnet_lite0_query', input_size=(24, 32),
                               query_pretrained='false', epochs=1, batch_size=8,
                               images_per_place=2, progress=False, degenerate_frames=3,
                               warm_start=0)
    data = asym.TrainData([''] * 8, labels, imgs, feats)
    with pytest.raises(ValueError, match='degenerate'):
        asym.train_query_network(cfg, data, method)
    data = dataclasses.replace(data, degenerate=build_bank(gallery, (24, 32), n=7))
    seen = []
    model = asym.make_query_model(cfg, dim=gallery.dim)
    model.register_forward_hook(lambda m, i, o: seen.append(o.shape[0]))
    model, hist = asym.train_query_network(cfg, data, method, model=model)
    assert hist['degenerate']['per_batch'] == 3 and np.isfinite(hist['epoch_loss'][0])
    assert seen and all(n == 8 + 3 for n in seen)
    # off by default: batches are the real images only
    seen.clear()
    asym.train_query_network(dataclasses.replace(cfg, degenerate_frames=0), data, method,
                             model=model)
    assert seen and all(n == 8 for n in seen)


def test_weight_one_is_one_mse_over_all_rows_and_the_weight_scales_the_no_place_rows():
    torch.manual_seed(1)
    q, g = torch.randn(6, 8), torch.randn(6, 8)
    qd, gd = torch.randn(2, 8), torch.randn(2, 8)
    pooled = torch.nn.functional.mse_loss(torch.cat([q, qd]), torch.cat([g, gd]))
    real = torch.nn.functional.mse_loss(q, g) * 6 / 8   # the trainer's distill term
    one = real + asym._degenerate_loss('distill', qd, gd, 6, 1.0)
    assert torch.allclose(one, pooled)
    four = real + asym._degenerate_loss('distill', qd, gd, 6, 4.0)
    expected = (((q - g) ** 2).sum() + 4 * ((qd - gd) ** 2).sum()) / (8 * 8)
    assert torch.allclose(four, expected)
    cos = 1 - torch.nn.functional.cosine_similarity(qd, gd, dim=1).mean()
    assert torch.allclose(asym._degenerate_loss('asym', qd, gd, 6, 3.0), 3 * cos)
