"""Release loading without the official code: transformers layout, the D2-VPR release (every
tensor accounted for), refusals, the explicit random aggregator, fingerprints, offline hub."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from test_release_parity import compare, official_dinov2, perturb, reference
from vpr_ros.models import create_model
from vpr_ros.models.checkpoint import model_meta, weights_fingerprint
from vpr_ros.models.dinov2_weights import to_official
from vpr_ros.models.hf_dinov2 import to_hf
from vpr_ros.models.releases import map_d2vpr, RandomAggregatorError, ReleaseLayoutError
from vpr_ros.models.runtime import load_encoder

TINY = dict(embed_dim=32, depth=2, num_heads=2)


def _tiny_official(name='dinov2_vits14_gem', size=56, **kw):
    torch.manual_seed(0)
    src = create_model(name, input_size=size, **TINY, **kw)
    perturb(src.backbone.vit)
    return src, to_official(src.backbone.vit.state_dict(), 32)


def test_transformers_layout_matches_the_official_forward(tmp_path):
    ref = perturb(official_dinov2('dinov2_vits14'))
    hf = to_hf(ref.state_dict())
    assert 'encoder.layer.0.attention.attention.query.weight' in hf
    assert 'embeddings.patch_embeddings.projection.weight' in hf
    assert not any(k.startswith('blocks.') for k in hf)
    path = tmp_path / 'model.safetensors'
    from safetensors.torch import save_file
    save_file({f'dinov2.{k}': v.contiguous() for k, v in hf.items()}, str(path))
    model = create_model('dinov2_vits14_gem', pretrained=True, checkpoint=str(path),
                         input_size=98).eval()
    x = torch.randn(2, 3, 98, 98, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        _, cls = model.backbone(x)
        compare('transformers Dinov2Model CLS', cls, ref.forward_features(x)['x_norm_clstoken'])


def _d2vpr_release() -> dict:
    keys = json.loads((reference() / 'd2vpr_release_keys.json').read_text())
    g = torch.Generator().manual_seed(0)
    sd = {}
    for k, shape in keys['tensors'].items():
        sd[k] = torch.tensor(3) if k.endswith('num_batches_tracked') else \
            torch.randn(shape, generator=g) * 0.02 + (1.0 if k.endswith('running_var') else 0)
    return {keys['wrapper'][0]: sd}


def test_d2vpr_release_every_tensor_lands(tmp_path):
    release = _d2vpr_release()
    sd = release['model_state_dict']
    path = tmp_path / 'd2vpr_release.pth'
    torch.save(release, path)
    model = create_model('d2vpr_vits14', pretrained=True, checkpoint=str(path)).eval()
    mapped, dropped = map_d2vpr(sd)
    own = model.state_dict()
    assert set(mapped) == set(own)  # nothing missing, nothing unexpected
    assert len(sd) == 666 and len(mapped) + len(dropped) == len(sd)
    assert sum('folded' in why for why in dropped.values()) == 12 * 5  # conv biases
    assert list(dropped).count('backbone.mask_token') == 1
    fold = 'backbone.blocks.3.adapter.branch2.1.'
    assert torch.equal(own['backbone.encoder.adapters.3.branch2.1.1.running_mean'],
                       sd[fold + 'bn.running_mean'] - sd[fold + 'conv.bias'])
    assert torch.equal(own['backbone.drm.0.weight'], sd['backbone.lin.weight'])
    assert torch.equal(own['aggregator.agg.pos_encoder.2.bias'], sd['pos_encoder.fc.2.bias'])
    assert model.aggregator.agg.offset_lookup == 'released'
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, 10752) and torch.isfinite(out).all()


def test_wrong_release_names_the_expected_layouts(tmp_path):
    path = tmp_path / 'd2vpr.pth'
    torch.save(_d2vpr_release(), path)
    with pytest.raises(ReleaseLayoutError) as err:
        create_model('dinov2_vits14_boq', checkpoint=str(path), input_size=56, **TINY)
    msg = str(err.value)
    assert 'D2-VPR release' in msg and 'dinov2_12288.pth' in msg and 'DINOv2 backbone' in msg


def test_backbone_only_file_needs_an_explicit_random_aggregator(tmp_path):
    _, official = _tiny_official()
    path = tmp_path / 'backbone.pth'
    torch.save(official, path)
    kw = dict(input_size=56, num_queries=4, **TINY)
    with pytest.raises(RandomAggregatorError, match='allow_random_aggregator=True'):
        create_model('dinov2_vits14_boq', pretrained=True, checkpoint=str(path), **kw)
    with pytest.raises(RandomAggregatorError, match='dinov2_12288.pth'):
        load_encoder(model='dinov2_vitb14_boq', checkpoint=str(path))
    create_model('dinov2_vits14_gem', checkpoint=str(path), input_size=56, **TINY)  # no agg
    a = create_model('dinov2_vits14_boq', checkpoint=str(path), allow_random_aggregator=True,
                     **kw)
    torch.manual_seed(123)  # the global seed must not matter
    b = create_model('dinov2_vits14_boq', checkpoint=str(path), allow_random_aggregator=True,
                     **kw)
    assert weights_fingerprint(a) == weights_fingerprint(b)
    assert 'allow_random_aggregator' not in model_meta(a)['create_kwargs']


def test_random_aggregator_is_identical_across_processes(tmp_path):
    _, official = _tiny_official()
    path = tmp_path / 'backbone.pth'
    torch.save(official, path)
    code = ('import sys, torch; from vpr_ros.models import create_model; '
            'from vpr_ros.models.checkpoint import model_meta, weights_fingerprint as f; '
            f'torch.manual_seed(int(sys.argv[1])); m = create_model("dinov2_vits14_salad", '
            f'checkpoint={str(path)!r}, allow_random_aggregator=True, input_size=56, '
            'embed_dim=32, depth=2, num_heads=2, num_clusters=4, token_dim=8, cluster_dim=8, '
            'hidden=16); print(f(m))')
    prints = [subprocess.run([sys.executable, '-c', code, seed], capture_output=True,
                             text=True, check=True).stdout.strip() for seed in ('1', '2')]
    assert len(prints[0]) == 64 and prints[0] == prints[1]


def test_fingerprint_tracks_every_tensor():
    m, _ = _tiny_official()
    before = weights_fingerprint(m)
    with torch.no_grad():
        m.backbone.vit.blocks[1].ls2.gamma[0] += 1e-3
    assert weights_fingerprint(m) != before


def test_offline_download_failure_names_the_file():
    env = dict(os.environ, HF_HUB_OFFLINE='1', HF_HOME='/nonexistent-vpr-ros-hf-home')
    code = ('from vpr_ros.models import create_model\n'
            'try:\n'
            '    create_model("dinov2_vits14_reg_gem", pretrained=True, input_size=28,\n'
            '                 embed_dim=32, depth=1, num_heads=2)\n'
            'except Exception as e:\n'
            '    print(type(e).__name__, e)\n')
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.startswith('MissingWeightsError'), out
    assert 'dinov2_vits14_reg4_pretrain.pth' in out and 'model.safetensors' in out
    assert 'checkpoint=PATH' in out
