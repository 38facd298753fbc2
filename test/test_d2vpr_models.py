"""D2-VPR student (adapters, DRM, TDDA) and CricaVPR-style teacher, on tiny configurations."""
import math

import pytest
import torch
import torch.nn.functional as F

from vpr_ros.models import create_model
from vpr_ros.models.cricavpr import RegionGeM
from vpr_ros.models.d2vpr import MulConvAdapter, stage2_parameters
from vpr_ros.models.tdda import region_boxes, TDDA

TINY_VIT = dict(embed_dim=32, depth=4, num_heads=2, init_values=1.0, input_size=56)
TINY_STUDENT = dict(TINY_VIT, taps=[1, 2, 3, 4], offset_hidden=16, fusion_hidden=16,
                    pos_hidden=8)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_region_layout_is_cricavpr_grid():
    boxes = region_boxes(16, 16)
    assert len(boxes) == 13
    assert [b[1] for b in boxes[:4]] == [(8, 8)] * 4
    assert [b[1] for b in boxes[4:]] == [(5, 5), (5, 6), (5, 5), (6, 5), (6, 6), (6, 5),
                                         (5, 5), (5, 6), (5, 5)]
    assert boxes[8][0] == pytest.approx((5 / 16, 5 / 16, 11 / 16, 11 / 16))


def test_student_output_shape_and_norm():
    model = create_model('d2vpr_vits14', **TINY_STUDENT).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 56, 56))
    assert out.shape == (2, 14 * 64) and model.dim == 14 * 64
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)
    proj = create_model('d2vpr_vits14', dim=40, **TINY_STUDENT).eval()
    assert proj(torch.randn(1, 3, 56, 56)).shape == (1, 40)


def test_repeat_offsets_gives_identical_output():
    tdda = TDDA(dim=16, offset_hidden=32, fusion_hidden=8, pos_hidden=8).eval()
    cls, fmap = torch.randn(3, 16), torch.randn(3, 16, 16, 16)
    with torch.no_grad():
        once = tdda((cls, fmap))
        tdda.repeat_offsets = True
        repeated = tdda((cls, fmap))
    assert torch.allclose(once, repeated, atol=1e-6)
    model = create_model('d2vpr_vits14', **TINY_STUDENT).eval()
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        a = model(x)
        model.aggregator.agg.repeat_offsets = True
        b = model(x)
    assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize('sign', [1.0, -1.0])
def test_offsets_and_scales_are_clamped(sign):
    tdda = TDDA(dim=16, offset_hidden=32, fusion_hidden=8, pos_hidden=8).eval()
    last = tdda.offset_generator[2]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(sign * 100.0)
        d = tdda.deform(torch.randn(2, 16), torch.randn(2, 16, 16, 16))
    assert torch.all(d['shift'] == sign * 0.25)
    assert torch.allclose(d['scale'], torch.full_like(d['scale'], 2.0 if sign > 0 else 0.5))
    # extreme random weights: everything stays within the specified ranges
    with torch.no_grad():
        for m in tdda.offset_generator:
            if isinstance(m, torch.nn.Conv2d):
                m.weight.normal_(0, 50.0)
        d = tdda.deform(torch.randn(2, 16), torch.randn(2, 16, 16, 16))
    assert d['shift'].abs().max() <= 0.25 and d['shift'].abs().max() == 0.25
    assert d['scale'].min() >= 0.5 and d['scale'].max() <= 2.0
    assert d['points'].min() >= 0 and d['points'].max() <= 1


def test_deformation_moves_points_as_specified():
    tdda = TDDA(dim=8, offset_hidden=8, fusion_hidden=8, pos_hidden=8).eval()
    last = tdda.offset_generator[2]
    with torch.no_grad():
        last.weight.zero_()
        # dx = 0.1, dy = 0; scale = 0.5 + 1.5 * sigmoid(s) = 1.0 -> s = -ln 2
        last.bias.copy_(torch.tensor([0.1, 0.0, -math.log(2), -math.log(2)]))
        d = tdda.deform(torch.randn(1, 8), torch.randn(1, 8, 16, 16))
        _, boxes = tdda.forward_tokens(torch.randn(1, 8), torch.randn(1, 8, 16, 16))
    # first medium region (x 0..0.5): points shifted right by 0.1 * 0.5, same spread
    pts = d['points'][0, :64]
    assert pts[:, 0].min().item() == pytest.approx(0.05, abs=1e-5)
    assert pts[:, 0].max().item() == pytest.approx(0.55, abs=1e-5)
    assert pts[:, 1].min().item() == pytest.approx(0.0, abs=1e-6)
    assert boxes[0, 0].tolist() == pytest.approx([0.3, 0.25, 0.5, 0.5], abs=1e-5)


def _grads_ok(model, params):
    missing = [n for n, p in model.named_parameters()
               if p.requires_grad and (p.grad is None or p.grad.abs().sum() == 0)]
    assert not missing, f'no gradient reached {missing[:8]}'
    trainable = {id(p) for p in params}
    assert all(id(p) in trainable for p in model.parameters() if p.grad is not None)


def test_gradients_reach_stage1_and_stage2_parameters():
    model = create_model('d2vpr_vits14', **TINY_STUDENT).train()
    x, target = torch.randn(4, 3, 56, 56), F.normalize(torch.randn(4, 14 * 64), dim=1)
    F.mse_loss(model(x), target).backward()
    _grads_ok(model, list(model.parameters()))
    model.zero_grad(set_to_none=True)
    params = stage2_parameters(model, last_blocks=2)
    ids = {id(p) for p in params}
    for p in model.parameters():
        p.requires_grad_(id(p) in ids)
    assert 0 < len(params) < len(list(model.parameters()))
    F.mse_loss(model(x), target).backward()
    _grads_ok(model, params)
    assert model.backbone.encoder.vit.blocks[0].attn.qkv.weight.grad is None
    assert model.backbone.encoder.vit.blocks[3].attn.qkv.weight.grad is not None


def test_real_size_parameter_counts_match_paper():
    with torch.device('meta'):
        student = create_model('d2vpr_vits14', pos_embed_size=518)
        teacher = create_model('cricavpr_vitb14', pos_embed_size=518, cross_image=True)
        default = create_model('d2vpr_vits14')
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # the released code also has conv biases before BatchNorm (216 / 432 per block), which
    # BatchNorm cancels and this implementation leaves out
    assert count(student) + 12 * 216 == 27_211_237  # paper: 27.21M
    assert count(teacher) + 12 * 432 == 106_760_897  # paper: 106.76M
    assert round(count(student) / 1e6, 2) == 27.21 and round(count(teacher) / 1e6, 2) == 106.76
    assert count(default) == count(student) - (37 * 37 - 16 * 16) * 384
    assert count(MulConvAdapter(384)) == 191_304 - 216
    assert student.dim == teacher.dim == 10752


def test_teacher_region_tokens_and_batch_independence():
    teacher = create_model('cricavpr_vitb14', **TINY_VIT).eval()
    assert teacher.spec.role == 'gallery' and teacher.dim == 14 * 32
    x = torch.randn(3, 3, 56, 56)
    with torch.no_grad():
        fmap, cls = teacher.backbone(x)
        tokens = teacher.aggregator.tokens((fmap, cls))
        out = teacher(x)
        single = teacher(x[:1])
    assert tokens.shape == (3, 14, 32)
    assert torch.allclose(tokens[:, 0], cls)
    p = teacher.aggregator.p
    by_hand = F.normalize(fmap, dim=1)[:, :, :2, :2].clamp(min=1e-6).pow(p).mean((2, 3))
    assert torch.allclose(tokens[:, 1], by_hand.pow(1 / p), atol=1e-6)
    assert torch.allclose(out[:1], single, atol=1e-5)  # no cross-image encoder by default
    agg = RegionGeM(32, cross_image=True).eval()
    with torch.no_grad():
        a, b = agg((fmap, cls))[:1], agg((fmap[:1], cls[:1]))
    assert not torch.allclose(a, b, atol=1e-4)  # why it is off: batch-dependent output


def test_released_offset_lookup_reads_the_lower_right_quarter():
    assert TDDA(dim=8).offset_lookup == 'released'  # the default: what the release was trained
    tdda = TDDA(dim=8, offset_hidden=8, fusion_hidden=8, pos_hidden=8,
                offset_lookup='roi').eval()
    omap = torch.zeros(1, 4, 16, 16)
    omap[:, 0, 8:, 8:] = 1.0  # dx set only in the lower-right quarter of the map
    pts = torch.tensor([[0.2, 0.2], [0.9, 0.9]])
    assert tdda._lookup(omap, pts)[0, :, 0].tolist() == [0.0, 1.0]
    tdda.offset_lookup = 'released'  # unnormalised grid: [0, 1] maps onto the centre..edge
    assert tdda._lookup(omap, pts)[0, :, 0].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError):
        TDDA(dim=8, offset_lookup='nearest')


def test_student_exports_to_onnx_with_parity():
    from vpr_ros.models.checkpoint import model_meta
    from vpr_ros.models.onnx_export import export_onnx, parity
    model = create_model('d2vpr_vits14', **TINY_STUDENT).eval()
    assert parity(model, export_onnx(model, model_meta(model))) < 1e-4
