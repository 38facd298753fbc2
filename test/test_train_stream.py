"""Training data streamed from disk: a generated GSV-Cities tree read by the reader, images
decoded per batch (LazyImages, stream_batches), gallery features in an on-disk cache written
batch by batch (memmap / NpyRows, resumable); memory does not grow with the dataset."""
import json
import tracemalloc

import numpy as np
import pytest
import torch
from torch import nn

from vpr_ros.bench.gsv_tree import generate_gsv_tree
from vpr_ros.bench.train_stream import stand_in_gallery
from vpr_ros.training.batches import LazyImages, place_batches, stream_batches, to_tensor
from vpr_ros.training.feature_file import NpyRows
from vpr_ros.training.gallery_cache import cache_key, cached_gallery_features, gallery_fingerprint
from vpr_ros.training.places import read_rows

N = 300


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
    root = generate_gsv_tree(tmp_path_factory.mktemp('stream') / 'gsv', N, per_place=4)
    return root, read_rows(root)


def test_gallery_cache_is_on_disk_and_resumes(tree, tmp_path):
    _, rows = tree
    model = stand_in_gallery(16)
    f1, m1 = cached_gallery_features(model, rows.paths, tmp_path, progress=False)
    f2, m2 = cached_gallery_features(model, rows.paths, tmp_path, progress=False)
    assert isinstance(f1, np.memmap) and f1.shape == (N, 16) and not f1.flags.writeable
    assert (m1['cached'], m2['cached']) == (False, True)
    np.testing.assert_array_equal(f1, f2)
    # an interrupted extraction: 100 rows done, recorded; the rerun extracts only the rest
    key = cache_key(model.name, '', model.input_size, rows.paths, gallery_fingerprint(model))
    part = np.array(f1)
    part[100:] = 0
    np.save(tmp_path / f'{key}.partial.npy', part)
    (tmp_path / f'{key}.partial.json').write_text(json.dumps({'done': 100, 'seconds': 7.0}))
    (tmp_path / f'{key}.npy').unlink()
    f3, m3 = cached_gallery_features(model, rows.paths, tmp_path, progress=False)
    assert not m3['cached'] and m3['extract_seconds'] >= 7.0
    np.testing.assert_allclose(f3, f1, rtol=1e-6, atol=1e-6)
    assert not (tmp_path / f'{key}.partial.json').exists()
    g = NpyRows(f3.filename)
    np.testing.assert_array_equal(g[[5, 299, 0]], f3[[5, 299, 0]])


@pytest.mark.parametrize('workers', [0, 1])
def test_streamed_batches_equal_the_preloaded_ones(tree, tmp_path, workers):
    from vpr_ros.training.asym import load_query_images
    _, rows = tree
    feats, _ = cached_gallery_features(stand_in_gallery(8), rows.paths, tmp_path,
                                       progress=False)
    size = (24, 32)
    pre = load_query_images(rows.paths, size, progress=False, stream='never')
    lazy = load_query_images(rows.paths, size, progress=False, stream='always')
    assert isinstance(lazy, LazyImages) and lazy.shape == pre.shape
    batches = place_batches(rows.places, 4, 4, np.random.default_rng(0))
    got = list(stream_batches(lazy, batches, NpyRows(feats.filename), workers=workers))
    assert len(got) == len(batches)
    for b, (idx, imgs, gal) in zip(batches, got):
        np.testing.assert_array_equal(idx, b)
        np.testing.assert_array_equal(imgs, pre[b])
        np.testing.assert_array_equal(gal, feats[b])
    sub = lazy.take(np.arange(10, 20))
    assert isinstance(sub, LazyImages) and np.array_equal(sub[[0, 9]], pre[[10, 19]])


def _epoch_peak(paths, labels, size, stream: bool) -> int:
    """tracemalloc peak (bytes) of one epoch of 16-image batches to input tensors."""
    from vpr_ros.training.asym import load_query_images
    batches = place_batches(labels, 4, 4, np.random.default_rng(0))
    tracemalloc.start()
    try:
        if stream:
            it = stream_batches(LazyImages(paths, size), batches, prefetch=2)
        else:
            images = load_query_images(paths, size, progress=False, stream='never')
            it = ((b, images[b], None) for b in batches)
        for _, imgs, _ in it:
            to_tensor(imgs, (0.5,) * 3, (0.5,) * 3)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_streaming_memory_does_not_grow_with_the_dataset(tree):
    """At 240x320 a preloaded image is 230 KB: 300 images preload ~69 MB, streaming keeps a
    few 16-image batches whatever the dataset size."""
    _, rows = tree
    size = (240, 320)
    quarter = rows.places < rows.places.max() // 4
    small = _epoch_peak([p for p, k in zip(rows.paths, quarter) if k], rows.places[quarter],
                        size, stream=True)
    full = _epoch_peak(rows.paths, rows.places, size, stream=True)
    preload = _epoch_peak(rows.paths, rows.places, size, stream=False)
    mb = 2 ** 20
    assert preload > 60 * mb                       # the old path holds every image
    assert full < 40 * mb and abs(full - small) < 8 * mb, (small / mb, full / mb)
    print(f'tracemalloc peak: stream {small / mb:.1f} MB ({quarter.sum()} images), '
          f'{full / mb:.1f} MB ({len(rows.paths)}); preload {preload / mb:.1f} MB')


def test_trainer_runs_on_lazy_images_and_the_cache_memmap(tree, tmp_path):
    from vpr_ros.models.base import VPRModel
    from vpr_ros.models.spec import ModelSpec
    from vpr_ros.training import asym
    _, rows = tree
    feats, _ = cached_gallery_features(stand_in_gallery(16), rows.paths, tmp_path,
                                       progress=False)
    images = asym.load_query_images(rows.paths, (24, 32), progress=False, stream='always')
    data = asym.TrainData(rows.paths, rows.places, images, feats).subset(rows.places < 20)
    assert isinstance(data.images, LazyImages) and len(data.images) == 80
    torch.manual_seed(0)
    spec = ModelSpec(name='tiny_query', role='query', input_size=(24, 32), dim=16,
                     mean=(0.5,) * 3, std=(0.5,) * 3)
    body = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten())
    model = VPRModel(spec, body, nn.Identity(), 32, 16)
    cfg = asym.AsymTrainConfig(epochs=1, batch_size=16, images_per_place=4, progress=False,
                               threads=1, augment=False)
    _, hist = asym.train_query_network(cfg, data, 'distill', model=model)
    assert hist['steps'] == 5 and np.isfinite(hist['epoch_loss'][0])
