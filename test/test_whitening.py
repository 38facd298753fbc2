"""PCA whitening of the gallery space and its folding back into the query network."""
import numpy as np
import pytest
import torch

from vpr_ros.training import asym
from vpr_ros.training.whitening import fit_whitening, fold, whitened_projection


def _features(n=200, d=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * np.linspace(3.0, 0.1, d) + 2.0   # uneven, off-centre
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_whitened_training_features_are_decorrelated_with_unit_mean_norm():
    feats = _features()
    white = fit_whitening(feats, 8)
    w = white.apply(feats).astype(np.float64)
    assert w.shape == (200, 8) and abs(w.mean(axis=0)).max() < 1e-5
    np.testing.assert_allclose(np.cov(w, rowvar=False, bias=True), np.eye(8) / 8, atol=1e-5)
    assert np.mean((w * w).sum(axis=1)) == pytest.approx(1.0, abs=1e-5)
    full = fit_whitening(feats, 23)   # n - 1 = 199 > d - 1: every direction with variance
    assert white.explained < full.explained <= 1.0 + 1e-9
    assert white.summary()['dim'] == 8
    with pytest.raises(ValueError, match='between 1 and 24'):
        fit_whitening(feats, 25)


def test_folded_network_ranks_the_raw_map_as_the_whitened_one():
    """W^T a against the raw map = a against the whitened map, up to one constant per query."""
    cfg = asym.AsymTrainConfig(query_model='mobilenetv3_small', input_size=(32, 32),
                               progress=False)
    feats = _features(d=48)
    white = fit_whitening(feats, 6)
    model = asym.make_query_model(cfg, dim=48).eval()
    whitened_projection(model, 6)
    assert model.dim == 6 and model.projection.out_features == 6
    imgs = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        a = model(imgs).double().numpy()                     # (3, 6) in the whitened space
        fold(model, white)
        q = model(imgs).double().numpy()                     # (3, 48) in the map's space
    assert model.dim == 48 and q.shape == (3, 48)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    g = _features(n=30, d=48, seed=1)                        # a map of other images
    s_white = a @ white.apply(g).astype(np.float64).T
    s_raw = q @ g.T.astype(np.float64)
    # per query: s_raw = c * s_white + b with c > 0, so the two rankings agree
    for sw, sr in zip(s_white, s_raw):
        c, b = np.polyfit(sw, sr, 1)
        assert c > 0
        np.testing.assert_allclose(c * sw + b, sr, atol=1e-5)
        assert list(np.argsort(-sw)) == list(np.argsort(-sr))


def test_whitening_needs_a_linear_projection():
    model = torch.nn.Module()
    model.projection = torch.nn.Identity()
    with pytest.raises(ValueError, match='linear projection'):
        whitened_projection(model, 4)
