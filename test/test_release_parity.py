"""The papers' released layouts load into vpr_ros with descriptor parity to the official code.

Each official model (../shared/reference-models) is built with seeded, perturbed random weights,
saved in its release layout, loaded with ``create_model(name, pretrained=True, checkpoint=...)``
and both forwards run on one fixed input: cosine >= 0.9999 required, max abs diff reported.
Where ../shared is absent (a user's machine) these tests skip; where it exists (the project's
machines, CI) a missing or broken reference import fails them.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vpr_ros.models import create_model

SHARED = Path(__file__).resolve().parents[1].parent / 'shared'
REF = SHARED / 'reference-models'
MIN_COS = 0.9999


def reference() -> Path:
    """../shared/reference-models, or skip (no ../shared) / fail (../shared without it)."""
    if not SHARED.is_dir():
        pytest.skip('needs ../shared/reference-models (official model code, on the project '
                    'machines and CI) for parity against the papers\' code')
    if not (REF / 'dinov2').is_dir():
        pytest.fail(f'{REF} is missing although ../shared exists')
    for p in (str(REF),):
        if p not in sys.path:
            sys.path.insert(0, p)
    return REF


def official_dinov2(name: str):
    """An official DINOv2 backbone (random weights) from ../shared/reference-models/dinov2."""
    reference()
    from dinov2.hub import backbones
    return getattr(backbones, name)(pretrained=False)


def perturb(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Seeded noise on every parameter and BatchNorm statistic (zero inits would hide maps)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)
        for name, b in model.named_buffers():
            if name.endswith('running_mean'):
                b.add_(torch.randn(b.shape, generator=g) * 0.1)
            elif name.endswith('running_var'):
                b.mul_(0.5 + torch.rand(b.shape, generator=g))
    return model.eval()


def compare(label: str, ours: torch.Tensor, ref: torch.Tensor) -> float:
    """Assert per-row cosine >= MIN_COS; print and return the max abs diff."""
    assert ours.shape == ref.shape, f'{label}: shape {tuple(ours.shape)} vs {tuple(ref.shape)}'
    cos = F.cosine_similarity(ours.flatten(1).double(), ref.flatten(1).double(), dim=1).min()
    diff = (ours - ref).abs().max().item()
    print(f'{label}: cos {cos.item():.7f}, max abs diff {diff:.3g}')
    assert cos >= MIN_COS, f'{label}: cosine {cos.item():.6f} < {MIN_COS} (max abs {diff:.3g})'
    return diff


def _patch_hub(monkeypatch, name: str):
    monkeypatch.setattr(torch.hub, 'load', lambda *a, **k: official_dinov2(name))


def _import_file(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize('name, ours, size', [
    ('dinov2_vits14', 'dinov2_vits14_gem', 98),
    ('dinov2_vits14_reg', 'dinov2_vits14_reg_gem', 112),
])
def test_dinov2_official_layout_tokens(tmp_path, name, ours, size):
    ref = perturb(official_dinov2(name))
    path = tmp_path / f'{name}_pretrain.pth'
    torch.save(ref.state_dict(), path)
    model = create_model(ours, pretrained=True, checkpoint=str(path), input_size=size).eval()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = ref.forward_features(x)
        fmap, cls = model.backbone(x)
    compare(f'{name} CLS', cls, want['x_norm_clstoken'])
    compare(f'{name} patches', fmap.flatten(2).transpose(1, 2), want['x_norm_patchtokens'])


def test_boq_release(tmp_path, monkeypatch):
    root = reference() / 'boq'
    _patch_hub(monkeypatch, 'dinov2_vitb14')
    monkeypatch.syspath_prepend(str(root / 'src'))
    hub = _import_file('boq_hubconf', root / 'hubconf.py')
    torch.manual_seed(0)
    ref = perturb(hub.VPRModel(hub.DinoV2(), hub.BoQ(768, 384, 64, 2, 32)))
    path = tmp_path / 'dinov2_12288.pth'
    torch.save(ref.state_dict(), path)
    model = create_model('dinov2_vitb14_boq', pretrained=True, checkpoint=str(path),
                         input_size=98).eval()
    assert model.dim == 12288
    x = torch.randn(2, 3, 98, 98, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        compare('BoQ dinov2_12288', model(x), ref(x)[0])


def test_salad_release(tmp_path, monkeypatch):
    root = reference() / 'salad'
    _patch_hub(monkeypatch, 'dinov2_vitb14')
    monkeypatch.syspath_prepend(str(root))
    from models.aggregators.salad import SALAD
    from models.backbones.dinov2 import DINOv2
    torch.manual_seed(0)
    ref = torch.nn.Module()
    ref.backbone, ref.aggregator = DINOv2('dinov2_vitb14', 4, True, True), SALAD(768, 64, 128, 256)
    perturb(ref)
    path = tmp_path / 'dino_salad.ckpt'
    torch.save({'state_dict': ref.state_dict(), 'epoch': 3}, path)  # Lightning wrapper
    model = create_model('dinov2_vitb14_salad', pretrained=True, checkpoint=str(path),
                         input_size=126).eval()
    assert model.dim == 8448
    x = torch.randn(2, 3, 126, 126, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        compare('SALAD dino_salad', model(x), ref.aggregator(ref.backbone(x)))


def test_boq_release_builds_identical_maps_in_two_processes(tmp_path, monkeypatch):
    """`vpr-ros build-map --model dinov2_vitb14_boq --checkpoint dinov2_12288.pth`, run twice in
    separate processes, stores identical rows and records the same weights fingerprint (no part
    of the model is random)."""
    import json
    import os
    import subprocess

    import cv2
    import numpy as np

    from vpr_ros.io.vg import format_vg_name, VGRecord
    from vpr_ros.mapstore import MapStore
    root = reference() / 'boq'
    _patch_hub(monkeypatch, 'dinov2_vitb14')
    monkeypatch.syspath_prepend(str(root / 'src'))
    hub = _import_file('boq_hubconf', root / 'hubconf.py')
    torch.manual_seed(0)
    release = tmp_path / 'dinov2_12288.pth'
    torch.save(perturb(hub.VPRModel(hub.DinoV2(), hub.BoQ(768, 384, 64, 2, 32))).state_dict(),
               release)
    db = tmp_path / 'vg' / 'database'
    db.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        rec = VGRecord(path='', utm_e=500000.0 + 5 * i, utm_n=4000000.0, zone_number=33,
                       zone_letter='T', heading=90.0)
        cv2.imwrite(str(db / format_vg_name(rec)), rng.integers(0, 255, (60, 80, 3), np.uint8))
    env = dict(os.environ, OMP_NUM_THREADS='1')
    rows, prints = [], []
    for run in ('a', 'b'):
        out = tmp_path / f'map_{run}'
        proc = subprocess.run(
            [sys.executable, '-m', 'vpr_ros', 'build-map', '--model', 'dinov2_vitb14_boq',
             '--checkpoint', str(release), '--source', 'vg', '--input', str(tmp_path / 'vg'),
             '--out', str(out), '--input-size', '98', '98', '--no-progress',
             '--no-local-features'], env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        store = MapStore.open(out)
        rows.append(np.asarray(store.descriptors_of([0, 1, 2]), np.float32))
        prints.append(json.loads((out / 'manifest.json').read_text())['encoder_source']
                      ['weights_fingerprint'])
        store.close()
    assert rows[0].shape == (3, 12288)
    np.testing.assert_array_equal(rows[0], rows[1])
    assert prints[0] == prints[1] and len(prints[0]) == 64
