"""The gallery feature cache hashes a model's weights once per model object (or never, when
its loader recorded the fingerprint), with the same cache key every call."""
import cv2
import numpy as np
import pytest
import torch

import vpr_ros.models.checkpoint as checkpoint
from vpr_ros.bench.train_stream import stand_in_gallery
from vpr_ros.training.gallery_cache import cache_key, cached_gallery_features, gallery_fingerprint


@pytest.fixture
def paths(tmp_path):
    rng = np.random.default_rng(0)
    out = []
    for i in range(3):
        out.append(str(tmp_path / f'{i}.png'))
        cv2.imwrite(out[-1], rng.integers(0, 255, (40, 52, 3), np.uint8))
    return out


@pytest.fixture
def hashes(monkeypatch):
    """Calls of the weights hash (vpr_ros.models.checkpoint.weights_fingerprint)."""
    calls = []
    real = checkpoint.weights_fingerprint

    def counting(model):
        calls.append(model)
        return real(model)
    monkeypatch.setattr(checkpoint, 'weights_fingerprint', counting)
    return calls


def _entries(cache):
    return sorted(p.name for p in cache.glob('*.npy'))


def test_two_cache_calls_hash_the_weights_once_with_the_same_key(tmp_path, paths, hashes):
    model = stand_in_gallery(8)
    want = checkpoint.weights_fingerprint(model)
    hashes.clear()
    f1, m1 = cached_gallery_features(model, paths, tmp_path / 'c', progress=False)
    f2, m2 = cached_gallery_features(model, paths, tmp_path / 'c', progress=False)
    assert len(hashes) <= 1
    assert (m1['cached'], m2['cached']) == (False, True)
    assert m1['weights_fingerprint'] == m2['weights_fingerprint'] == want
    assert len(_entries(tmp_path / 'c')) == 1  # one key: the second call reused it
    np.testing.assert_array_equal(f1, f2)
    key = cache_key(model.name, '', model.input_size, paths, gallery_fingerprint(model))
    assert _entries(tmp_path / 'c') == [f'{key}.npy'] and len(hashes) <= 1


def test_the_loaders_recorded_fingerprint_is_used_without_hashing(tmp_path, paths, hashes):
    model = stand_in_gallery(8)
    model.meta = {'weights_fingerprint': 'ab' * 32}
    _, m = cached_gallery_features(model, paths, tmp_path / 'c', progress=False)
    assert m['weights_fingerprint'] == 'ab' * 32 and not hashes


def test_changed_weights_are_hashed_again(hashes):
    model = stand_in_gallery(8)
    first = gallery_fingerprint(model)
    assert gallery_fingerprint(model) == first and len(hashes) == 1
    with torch.no_grad():
        next(model.parameters()).add_(1.0)  # in place (an optimizer step, load_state_dict)
    second = gallery_fingerprint(model)
    assert second != first and len(hashes) == 2
    model.load_state_dict(stand_in_gallery(8).state_dict())  # copied back in place
    assert gallery_fingerprint(model) == first and len(hashes) == 3
    other = stand_in_gallery(8)  # another model object: its own hash
    assert gallery_fingerprint(other) == first and len(hashes) == 4
