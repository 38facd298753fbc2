"""DINOv2 weight files (official and timm layouts, .pth and .safetensors) load with parity."""
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from vpr_ros.models import create_model
from vpr_ros.models import dinov2
from vpr_ros.models.dinov2_weights import convert_official, to_official

TINY = dict(embed_dim=32, depth=2, num_heads=2)


def _source(name, size=56, **kw):
    """A randomly initialised tiny model whose ViT weights play the role of a weights file."""
    torch.manual_seed(0)
    model = create_model(name, input_size=size, **TINY, **kw).eval()
    with torch.no_grad():  # timm inits these to zero/small values; make them matter
        for p in model.backbone.vit.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


def _feats(model, x):
    with torch.no_grad():
        return model.backbone.vit.forward_features(x)


def _official_forward(sd, vit, x):
    """Token assembly of facebookresearch/dinov2 (pos_embed covers CLS; registers after it)."""
    tokens = vit.patch_embed(x)
    cls = sd['cls_token'].expand(x.shape[0], -1, -1)
    tokens = torch.cat([cls, tokens], dim=1) + sd['pos_embed']
    if 'register_tokens' in sd:
        regs = sd['register_tokens'].expand(x.shape[0], -1, -1)
        tokens = torch.cat([tokens[:, :1], regs, tokens[:, 1:]], dim=1)
    for blk in vit.blocks:
        tokens = blk(tokens)
    return vit.norm(tokens)


@pytest.mark.parametrize('name', ['dinov2_vits14_gem', 'dinov2_vits14_reg_salad'])
def test_official_layout_loads_with_parity(tmp_path, name):
    kw = dict(num_clusters=4, token_dim=8, cluster_dim=8, hidden=16) if 'salad' in name else {}
    src = _source(name, **kw)
    if 'salad' in name:  # a backbone-only file leaves SALAD random: refused unless explicit
        kw['allow_random_aggregator'] = True
    cls_pos = torch.randn(1, 1, 32)
    official = to_official(src.backbone.vit.state_dict(), 32, cls_pos=cls_pos)
    assert 'mask_token' in official and 'blocks.1.ls1.gamma' in official
    assert ('register_tokens' in official) == ('_reg' in name)
    path = tmp_path / 'dinov2_vits14_pretrain.pth'
    torch.save(official, path)
    loaded = create_model(name, input_size=56, checkpoint=str(path), **TINY, **kw).eval()
    x = torch.randn(2, 3, 56, 56)
    got = _feats(loaded, x)
    assert torch.allclose(got, _feats(src, x), atol=1e-5)
    with torch.no_grad():
        ref = _official_forward(official, loaded.backbone.vit, x)
    assert torch.allclose(got, ref, atol=1e-5)


def test_giant_swiglu_keys_convert(tmp_path):
    src = _source('dinov2_vitg14_gem')
    official = to_official(src.backbone.vit.state_dict(), 32, swiglu=True)
    hidden = official['blocks.0.mlp.w3.weight'].shape[1]
    assert official['blocks.0.mlp.w12.weight'].shape == (2 * hidden, 32)
    assert 'blocks.0.mlp.w12.weight' not in convert_official(official)
    path = tmp_path / 'dinov2_vitg14_pretrain.pth'
    torch.save(official, path)
    loaded = create_model('dinov2_vitg14_gem', input_size=56, checkpoint=str(path), **TINY)
    x = torch.randn(1, 3, 56, 56)
    assert torch.allclose(_feats(loaded.eval(), x), _feats(src, x), atol=1e-5)


@pytest.mark.parametrize('suffix', ['.safetensors', '.pth'])
def test_timm_layout_loads_with_parity(tmp_path, suffix):
    src = _source('dinov2_vits14_reg_gem')
    sd = {k: v.contiguous() for k, v in src.backbone.vit.state_dict().items()}
    path = str(tmp_path / f'timm_vits14_reg{suffix}')
    save_file(sd, path) if suffix == '.safetensors' else torch.save({'model': sd}, path)
    loaded = create_model('dinov2_vits14_reg_gem', pretrained=True, checkpoint=path,
                          input_size=56, **TINY).eval()
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        assert torch.allclose(loaded(x), src(x), atol=1e-5)


def test_pos_embed_is_interpolated_to_the_chosen_size(tmp_path):
    src = _source('dinov2_vits14_gem', size=518)  # the official 37 x 37 grid
    path = tmp_path / 'official.pth'
    torch.save(to_official(src.backbone.vit.state_dict(), 32), path)
    loaded = create_model('dinov2_vits14_gem', input_size=100, checkpoint=str(path), **TINY)
    assert loaded.input_size == (98, 98)
    pos = src.backbone.vit.pos_embed
    grid = pos[:, 1:].reshape(1, 37, 37, 32).permute(0, 3, 1, 2)
    # the official DINOv2 forward's interpolation (offset 0.1, no antialias), not timm's
    # size-based antialiased resampling pinned here before: that gave CLS cos 0.9999 only
    expect = F.interpolate(grid, scale_factor=(7.1 / 37, 7.1 / 37), mode='bicubic',
                           antialias=False).permute(0, 2, 3, 1).reshape(1, 49, 32)
    got = loaded.backbone.vit.pos_embed
    assert got.shape == (1, 50, 32)
    assert torch.allclose(got[:, :1], pos[:, :1])
    assert torch.allclose(got[:, 1:], expect, atol=1e-5)
    with torch.no_grad():
        assert loaded(torch.randn(1, 3, 98, 98)).shape == (1, 32)


def test_wrong_files_are_refused_clearly(tmp_path):
    plain = tmp_path / 'plain.pth'
    torch.save(to_official(_source('dinov2_vits14_gem').backbone.vit.state_dict(), 32), plain)
    with pytest.raises(ValueError, match='register tokens'):
        create_model('dinov2_vits14_reg_gem', checkpoint=str(plain), input_size=56, **TINY)
    with pytest.raises(ValueError, match='another ViT size'):
        create_model('dinov2_vits14_gem', checkpoint=str(plain), input_size=56,
                     embed_dim=64, depth=2, num_heads=2)
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='weights_only'):
        create_model('dinov2_vits14_gem', checkpoint=str(junk), **TINY)


def test_offline_without_weights_says_how_to_provide_them(monkeypatch):
    def offline(*a, **k):
        raise OSError('no route to huggingface.co')
    monkeypatch.setattr(dinov2, '_download_hub_file', offline)  # was _hub_reachable (removed)
    monkeypatch.setattr(dinov2, '_cached_hub_file', lambda *a, **k: None)
    with pytest.raises(dinov2.MissingWeightsError) as err:  # BoQ: backbone-only is explicit
        create_model('dinov2_vitb14_reg_boq', pretrained=True, input_size=28,
                     allow_random_aggregator=True, **TINY)
    msg = str(err.value)
    assert 'https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_reg4_pretrain.pth' \
        in msg
    assert 'checkpoint=PATH' in msg and '--checkpoint' in msg
