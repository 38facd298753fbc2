"""A short real AsymVPR training run, the baselines' training paths and the gallery cache."""
import dataclasses

import json

import numpy as np
import pytest
import torch
from torch import nn

from vpr_ros.models.base import VPRModel
from vpr_ros.models.registry import ModelSpec
from vpr_ros.training import asym, csd
from vpr_ros.experiments.asym.recall import recall_hits

SIZE = 32
HALF = dict(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


def _places(n, seed):
    """Each place: a random 4x4 colour layout upsampled (its 'appearance')."""
    import cv2
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, 4, 4, 3)).astype(np.uint8)
    return np.stack([cv2.resize(b, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC) for b in base])


def _condition(img, cond, rng):
    """Conditions change light and tint; every shot is shifted and noisy."""
    gain = (1.0, 0.6, 0.35, 0.8)[cond]
    tint = np.array([(0, 0, 0), (20, 5, -10), (-10, -10, 15), (-5, 0, 5)][cond])
    out = img.astype(np.float32) * gain + tint + rng.normal(0, 6, img.shape)
    out = np.roll(out, tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
    return np.clip(out, 0, 255).astype(np.uint8)


def _shots(places, seed):
    rng = np.random.default_rng(seed)
    imgs, labels, conds = [], [], []
    for p, img in enumerate(places):
        for c in range(4):
            imgs.append(_condition(img, c, rng))
            labels.append(p)
            conds.append(c)
    return np.stack(imgs), np.array(labels), np.array(conds)


def _gallery():
    """A fixed 'gallery model': a 4x4 colour thumbnail with per-channel instance norm (which
    cancels the conditions' gain and tint), 48-d."""
    spec = ModelSpec(name='tiny_gallery', role='gallery', input_size=(SIZE, SIZE), dim=48, **HALF)
    backbone = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.InstanceNorm2d(3))
    return VPRModel(spec, backbone, nn.Flatten(), 48, 48).eval()


def _query(dim=48):
    """A tiny trainable query network: two strided convs, 4x4 pooling, projection."""
    torch.manual_seed(0)
    spec = ModelSpec(name='tiny_query', role='query', input_size=(SIZE, SIZE), dim=dim, **HALF)
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1),
                             nn.ReLU(), nn.AdaptiveAvgPool2d(4))
    return VPRModel(spec, backbone, nn.Flatten(), 256, dim)


@torch.inference_mode()
def _encode(model, images):
    model.eval()
    return model(asym.to_tensor(images, model.spec.mean, model.spec.std)).numpy()


def _asym_r1(query_net, gallery, places):
    imgs, labels, conds = _shots(places, seed=5)
    db = _encode(gallery, imgs[conds == 0])
    q = _encode(query_net, imgs[conds > 0])
    xy = lambda lab: np.stack([lab * 100.0, np.zeros(len(lab))], axis=1)  # noqa: E731
    hits = recall_hits(q, db, xy(labels[conds > 0]), xy(labels[conds == 0]), 1.0, (1,))
    return float(hits.mean())


@pytest.fixture(scope='module')
def setup():
    gallery = _gallery()
    imgs, labels, _ = _shots(_places(24, seed=1), seed=2)
    feats = _encode(gallery, imgs)
    data = asym.TrainData([f'img{i}' for i in range(len(imgs))], labels, imgs, feats)
    cfg = asym.AsymTrainConfig(epochs=12, batch_size=32, lr=3e-3, lr_min=1e-3, augment=False,
                               progress=False, threads=2, tau=0.1, gamma=1.0)
    return gallery, data, cfg


def test_training_improves_asymmetric_recall_on_held_out_places(setup):
    gallery, data, cfg = setup
    held_out = _places(20, seed=99)
    query = _query()
    before = _asym_r1(query, gallery, held_out)
    query, hist = asym.train_query_network(cfg, data, 'asym', model=query)
    after = _asym_r1(query, gallery, held_out)
    assert hist['epoch_loss'][-1] < hist['epoch_loss'][0]
    assert len(hist['epoch_loss']) == cfg.epochs and hist['steps'] > 0
    assert after > before + 0.15, (before, after)


def test_instance_term_trains_and_improves_recall_too(setup):
    """Ours with the instance-bank term (every training gallery image a candidate) runs through
    the trainer, lowers its loss and lifts held-out recall like ours without it."""
    gallery, data, cfg = setup
    held_out = _places(20, seed=99)
    query = _query()
    before = _asym_r1(query, gallery, held_out)
    query, hist = asym.train_query_network(dataclasses.replace(cfg, instance_weight=1.0), data,
                                           'asym', model=query)
    assert hist['epoch_loss'][-1] < hist['epoch_loss'][0]
    assert _asym_r1(query, gallery, held_out) > before + 0.15


@pytest.mark.parametrize('method', ['csd', 'symmetric'])
def test_baselines_train_and_lower_their_loss(setup, method):
    gallery, data, cfg = setup
    anchors = csd.knn_neighbours(data.gallery, k=8)[0] if method == 'csd' else None
    _, hist = asym.train_query_network(
        cfg.__class__(**{**cfg.__dict__, 'epochs': 4}), data, method,
        model=_query(), anchors=anchors)
    assert hist['epoch_loss'][-1] < hist['epoch_loss'][0]


def test_place_batches_are_place_balanced():
    labels = np.repeat(np.arange(10), 3)
    batches = asym.place_batches(labels, places_per_batch=2, per_place=4,
                                 rng=np.random.default_rng(0))
    seen = np.concatenate([np.unique(labels[b]) for b in batches])
    assert sorted(seen.tolist()) == list(range(10))  # every place once per epoch
    for b in batches:
        assert all((labels[b] == p).sum() == 4 for p in np.unique(labels[b]))


def test_gallery_cache_reuses_and_invalidates(tmp_path):
    import cv2
    from vpr_ros.training.gallery_cache import cached_gallery_features
    gallery = _gallery()
    paths = []
    for i, img in enumerate(_places(3, seed=3)):
        paths.append(str(tmp_path / f'{i}.png'))
        cv2.imwrite(paths[-1], img[:, :, ::-1])
    f1, m1 = cached_gallery_features(gallery, paths, tmp_path / 'cache', progress=False)
    f2, m2 = cached_gallery_features(gallery, paths, tmp_path / 'cache', progress=False)
    assert (m1['cached'], m2['cached']) == (False, True)
    np.testing.assert_array_equal(f1, f2)
    assert f1.shape == (3, 48) and len(list((tmp_path / 'cache').glob('*.npy'))) == 1
    cv2.imwrite(paths[0], np.zeros((40, 40, 3), np.uint8))  # changed data: re-extracted
    f3, m3 = cached_gallery_features(gallery, paths, tmp_path / 'cache', progress=False)
    assert not m3['cached'] and not np.allclose(f3[0], f1[0])
    np.testing.assert_allclose(f3[1:], f1[1:], rtol=1e-5, atol=1e-6)


def test_gallery_cache_two_processes_extract_one_key_once(tmp_path):
    """Two extractions of the same key at once: one extracts, the other waits for the lock
    and reuses the finished entry (no rename race, the manifest written whole)."""
    import threading
    import cv2
    from vpr_ros.training.gallery_cache import cached_gallery_features
    paths = []
    for i, img in enumerate(_places(3, seed=4)):
        paths.append(str(tmp_path / f'{i}.png'))
        cv2.imwrite(paths[-1], img[:, :, ::-1])
    results, errors = [], []

    def run():
        try:
            results.append(cached_gallery_features(_gallery(), paths, tmp_path / 'cache',
                                                   progress=False))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=run) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    assert sorted(m['cached'] for _, m in results) == [False, True]
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert json.loads(next((tmp_path / 'cache').glob('*[0-9a-f].json')).read_text())['dim'] == 48


@pytest.mark.parametrize('name', ['mobilenetv3_small', 'mobilenetv3_large',
                                  'mobilenetv4_conv_small', 'efficientvit_b2',
                                  'mobilevitv2_100', 'efficientnet_lite0_query'])
def test_every_query_model_trains_through_the_config(name):
    """--query-model NAME: built with the gallery's dim at the query input size, one step."""
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(2), 2)
    feats = rng.standard_normal((4, 48)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    cfg = asym.AsymTrainConfig(query_model=name, input_size=(32, 32), epochs=1, batch_size=4,
                               images_per_place=2, progress=False)
    model = asym.make_query_model(cfg, dim=48)
    assert model.dim == 48 and tuple(model.input_size) == (32, 32)
    before = [p.detach().clone() for p in model.parameters()]
    model, hist = asym.train_query_network(cfg, asym.TrainData([''] * 4, labels, imgs, feats),
                                           'asym', model=model)
    assert hist['steps'] == 1 and np.isfinite(hist['epoch_loss'][0])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_query_init_from_the_gallery():
    """query_init='gallery': a query network of the gallery's family starts as the gallery
    model (same descriptors at the same input); another family is refused."""
    from vpr_ros.models import create_model
    torch.manual_seed(123)  # not make_query_model's seed: scratch weights differ from these
    gallery = create_model('efficientnet_lite0_gem', pretrained=False, input_size=(64, 64))
    cfg = asym.AsymTrainConfig(query_model='efficientnet_lite0_query', input_size=(64, 64),
                               query_pretrained='false', query_init='gallery')
    query = asym.make_query_model(cfg, dim=1280, gallery=gallery).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(query(x), gallery.eval()(x))
    scratch = asym.make_query_model(dataclasses.replace(cfg, query_init=''), dim=1280)
    g, q, s = gallery.state_dict(), query.state_dict(), scratch.state_dict()
    assert set(q) - set(g) == {'projection.weight', 'projection.bias'}  # starts as identity
    assert all(torch.equal(g[k], q[k]) for k in g)
    assert not all(torch.equal(g[k], s[k]) for k in g)
    with pytest.raises(ValueError, match='family'):
        asym.make_query_model(dataclasses.replace(cfg, query_model='mobilenetv3_small'),
                              dim=1280, gallery=gallery)


def test_query_init_from_a_multiscale_gallery():
    """A one-scale query network starts from a multi-scale (msgem) gallery's tensors: the
    result is the gallery's network run at one scale (the efficientnet_lite2_gem twin)."""
    from vpr_ros.models import create_model
    from vpr_ros.models.packaged import from_multiscale_state, to_multiscale_state
    torch.manual_seed(5)
    gallery = create_model('efficientnet_lite2_vpr', pretrained=False, input_size=(64, 64))
    cfg = asym.AsymTrainConfig(query_model='efficientnet_lite2_query', input_size=(48, 64),
                               query_pretrained='false', query_init='gallery')
    query = asym.make_query_model(cfg, dim=1280, gallery=gallery).eval()
    one_scale = from_multiscale_state(gallery.state_dict())
    assert to_multiscale_state(one_scale).keys() == gallery.state_dict().keys()
    twin = create_model('efficientnet_lite2_gem', pretrained=False, input_size=(48, 64))
    twin.load_state_dict(one_scale, strict=True)
    x = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        torch.testing.assert_close(query(x), twin.eval()(x))


def test_query_init_from_a_named_model():
    """query_init=<registered model>: the query network starts from that model's pretrained
    weights (here the packaged efficientnet_lite0_vpr), whatever the gallery is."""
    from vpr_ros.models import create_model
    cfg = asym.AsymTrainConfig(query_model='efficientnet_lite0_query', input_size=(64, 64),
                               query_pretrained='false', query_init='efficientnet_lite0_vpr')
    query = asym.make_query_model(cfg, dim=1280).eval()
    ref = create_model('efficientnet_lite0_vpr', pretrained=True, input_size=(64, 64)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(query(x), ref(x))
    with pytest.raises(ValueError, match='family'):
        asym.make_query_model(dataclasses.replace(cfg, query_model='mobilenetv3_small'), dim=1280)


def test_query_init_from_a_checkpoint_continues_training(tmp_path):
    """query_init=<checkpoint of an earlier run>: every tensor, the trained projection
    included, is the checkpoint's; warm_start 0 leaves that projection as it is."""
    cfg = asym.AsymTrainConfig(query_model='efficientnet_lite0_query', input_size=(48, 64),
                               query_pretrained='false', seed=3)
    first = asym.make_query_model(cfg, dim=256).eval()
    with torch.no_grad():
        first.projection.weight.mul_(-2.0)  # as if trained: not what a fresh start gives
    path = str(tmp_path / 'ours.pt')
    asym.save_query_checkpoint(path, first, cfg, 'efficientnet_lite2_vpr24', 256, {})
    more = dataclasses.replace(cfg, query_init=path, seed=4)
    again = asym.make_query_model(more, dim=256).eval()
    for k, v in first.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v)
    assert asym.warm_start_projection(again, None, max_images=0) == {}
    torch.testing.assert_close(again.projection.weight, first.projection.weight)


def test_gallery_features_use_the_instance_input_size(tmp_path):
    """A gallery built at another input size (--gallery-input-size) is extracted at that
    size, the one its latency is profiled at, not at its spec's default."""
    import cv2
    from vpr_ros.models import create_model
    from vpr_ros.training.gallery_cache import cached_gallery_features
    rng = np.random.default_rng(1)
    path = str(tmp_path / 'a.png')
    cv2.imwrite(path, rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))
    big = create_model('efficientnet_lite0_gem', pretrained=False, input_size=(96, 128)).eval()
    feats, meta = cached_gallery_features(big, [path], tmp_path / 'c', progress=False)
    assert meta['input_size'] == [96, 128]
    with torch.no_grad():
        ref = big(big.preprocess(cv2.imread(path)[..., ::-1].copy(), (96, 128))).numpy()
    np.testing.assert_allclose(feats, ref, rtol=1e-4, atol=1e-5)


def test_gallery_features_onnxruntime_backend_matches_torch(tmp_path):
    """--gallery-backend onnxruntime (the default 'auto' when installed) gives the torch
    descriptors; an unknown backend is refused."""
    import cv2
    from vpr_ros.models import create_model
    from vpr_ros.training.gallery_cache import cached_gallery_features, extract_features
    rng = np.random.default_rng(2)
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f'{i}.png'))
        cv2.imwrite(paths[-1], rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))
    model = create_model('efficientnet_lite0_gem', pretrained=False, input_size=(64, 96)).eval()
    ref = extract_features(model, paths, 2, progress=False, backend='torch')
    feats, meta = cached_gallery_features(model, paths, tmp_path / 'c', progress=False,
                                          backend='onnxruntime', threads=1)
    assert meta['backend'] == 'onnxruntime' and not meta['cached']
    np.testing.assert_allclose(feats, ref, atol=1e-4)
    with pytest.raises(ValueError, match='backend'):
        extract_features(model, paths, 2, progress=False, backend='tensorrt')


def test_warm_start_projection_recovers_a_linear_gallery():
    """When the gallery features are a linear map of the query network's pooled features,
    the least-squares warm start finds it (cosine ~1); before it the cosine is low."""
    from vpr_ros.models import create_model
    torch.manual_seed(0)
    model = create_model('efficientnet_lite0_query', pretrained=False, dim=24,
                         input_size=(32, 32))
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (96, 32, 32, 3), dtype=np.uint8)
    with torch.no_grad():
        pooled = model.aggregator(model.backbone(asym.to_tensor(imgs, model.mean, model.std)))
    lin = torch.randn(pooled.shape[1], 24, dtype=torch.float64) / pooled.shape[1] ** 0.5
    g = torch.nn.functional.normalize(pooled.double() @ lin + 0.1, dim=-1).float().numpy()
    data = asym.TrainData([''] * 96, np.arange(96) // 4, imgs, g)
    info = asym.warm_start_projection(model, data, max_images=96, ridge=1e-9)
    assert info['images'] == 96 and info['cos_before'] < 0.5
    assert info['cos_after'] > 0.99
    with torch.no_grad():
        q = model.eval()(asym.to_tensor(imgs, model.mean, model.std)).numpy()
    assert float((q * g).sum(1).min()) > 0.98


def test_reverse_warm_start_carries_the_students_ranking_into_the_gallery_space():
    """'reverse' regresses the student's descriptor from the gallery's: when the gallery is a
    rotation of the student's space, q.g of the warm-started network ranks every database
    image exactly as the student's own s.s does, while q itself differs from s."""
    from vpr_ros.models import create_model
    torch.manual_seed(0)
    model = create_model('efficientnet_lite0_query', pretrained=False, dim=16,
                         input_size=(32, 32)).eval()
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, (80, 32, 32, 3), dtype=np.uint8)
    with torch.no_grad():
        s = model(asym.to_tensor(imgs, model.mean, model.std)).double()
    rot = torch.linalg.qr(torch.randn(16, 16, dtype=torch.float64))[0]
    g = (s @ rot).float().numpy()
    data = asym.TrainData([''] * 80, np.arange(80) // 4, imgs, g)
    info = asym.warm_start_projection(model, data, max_images=80, ridge=1e-9, mode='reverse')
    assert info['mode'] == 'reverse' and info['images'] == 80
    with torch.no_grad():
        q = model(asym.to_tensor(imgs, model.mean, model.std)).double()
    own = (s[:40] @ s[40:].T).numpy()
    asym_scores = (q[:40] @ torch.from_numpy(g[40:]).double().T).numpy()
    np.testing.assert_array_equal(own.argsort(1), asym_scores.argsort(1))
    assert float((q - s).abs().max()) > 0.1
    with pytest.raises(ValueError, match='warm start mode'):
        asym.warm_start_projection(model, data, mode='sideways')


def test_reverse_place_warm_start_targets_the_place_mean():
    """'reverse_place' fits the map from the gallery to each place's mean student descriptor:
    every image of a place then gets (nearly) the same prediction R g."""
    from vpr_ros.training.query_init import _place_means
    desc = torch.nn.functional.normalize(torch.randn(12, 8, dtype=torch.float64), dim=-1)
    labels = np.repeat([5, 9, 7], 4)
    means = _place_means(desc, labels)
    for p in range(3):
        rows = slice(4 * p, 4 * p + 4)
        ref = torch.nn.functional.normalize(desc[rows].sum(0), dim=0)
        assert torch.allclose(means[rows], ref.expand(4, -1))


def test_on_epoch_callback_and_a_given_warm_start(setup):
    """on_epoch runs once per epoch on the eval-mode model; a given warm start is kept as is
    (not run again) and recorded in the history."""
    gallery, data, cfg = setup
    seen = []

    def cb(epoch, model):
        seen.append((epoch, model.training))
        return {'epoch': epoch}
    cfg2 = dataclasses.replace(cfg, epochs=2)
    given = {'images': 0, 'seconds': 0.0, 'marker': True}
    _, hist = asym.train_query_network(cfg2, data, 'asym', model=_query(), on_epoch=cb,
                                       warm=given)
    assert seen == [(0, False), (1, False)]
    assert hist['on_epoch'] == [{'epoch': 0}, {'epoch': 1}]
    assert hist['warm_start'] is given


def test_shared_warm_start_is_computed_once_and_copied():
    from vpr_ros.models import create_model
    from vpr_ros.experiments.asym.inputs import shared_warm_start
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8)
    data = asym.TrainData([''] * 32, np.arange(32) // 4, imgs,
                          rng.standard_normal((32, 16)).astype(np.float32))
    cfg = asym.AsymTrainConfig(warm_start=32)
    done = {}
    a, b = (create_model('efficientnet_lite0_query', pretrained=False, dim=16,
                         input_size=(32, 32)) for _ in range(2))
    info_a = shared_warm_start(a, data, cfg, done)
    info_b = shared_warm_start(b, data, cfg, done)
    assert info_a is info_b and len(done) == 1
    assert torch.equal(a.projection.weight, b.projection.weight)
    assert torch.equal(a.projection.bias, b.projection.bias)


def test_precompute_growth_tiles_the_gallery_into_new_places():
    from vpr_ros.experiments.asym.cost import precompute_growth
    rng = np.random.default_rng(0)
    f = rng.standard_normal((120, 16)).astype(np.float32)
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    rows = precompute_growth(f, np.arange(120) // 4, multiples=(1, 3), k=4, batch=16,
                             threads=1)
    assert [(r['images'], r['places']) for r in rows] == [(120, 30), (360, 90)]
    assert rows[1]['bank_MB'] == pytest.approx(3 * rows[0]['bank_MB'])
    assert rows[1]['knn_anchors_MB'] == pytest.approx(3 * rows[0]['knn_anchors_MB'])
    assert all(r['ours_loss_ms'] > 0 and r['csd_loss_ms'] > 0 and r['knn_s'] > 0
               for r in rows)


def test_run_config_gives_the_student_its_own_epochs():
    from vpr_ros.training.asym import AsymTrainConfig
    from vpr_ros.experiments.asym.inputs import run_config
    cfg = AsymTrainConfig(epochs=4, student_epochs=9, lr=1e-3, lr_min=1e-4,
                          from_student_lr_scale=2.0)
    assert run_config(cfg, 'symmetric', None).epochs == 9
    ours = run_config(cfg, 'asym', 'symmetric_student')
    assert (ours.epochs, ours.lr, ours.lr_min) == (4, 2e-3, 2e-4)
    assert run_config(cfg, 'csd', 'symmetric_student').epochs == 4
    assert run_config(AsymTrainConfig(epochs=4), 'symmetric', None).epochs == 4


def test_gamma_ramp_trains_and_is_recorded(setup, monkeypatch):
    """With gamma_schedule ramp the loss sees gamma * t / T at step t (recorded per call), the
    run lowers its loss, and a bad schedule fails before training."""
    from vpr_ros.training import asym_loss
    gallery, data, cfg = setup
    seen = []
    real = asym_loss.asym_loss

    def spy(*a, **k):
        seen.append(a[6])
        return real(*a, **k)
    monkeypatch.setattr(asym, 'asym_loss', spy)
    ramp = dataclasses.replace(cfg, epochs=3, gamma=2.0, gamma_schedule='ramp')
    _, hist = asym.train_query_network(ramp, data, 'asym', model=_query())
    total = hist['steps']
    assert hist['gamma_schedule'] == 'ramp' and len(seen) == total
    assert seen == pytest.approx([2.0 * t / total for t in range(total)])
    assert hist['epoch_loss'][-1] < hist['epoch_loss'][0]
    with pytest.raises(ValueError, match='gamma_schedule'):
        asym.train_query_network(dataclasses.replace(cfg, gamma_schedule='x'), data, 'asym',
                                 model=_query())


def test_plain_distillation_trains(setup):
    _, hist = asym.train_query_network(dataclasses.replace(setup[2], epochs=4), setup[1],
                                       'distill', model=_query())
    assert hist['epoch_loss'][-1] < hist['epoch_loss'][0]
