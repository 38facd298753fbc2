"""Every registered model builds and gives L2-normalised descriptors of its declared width."""
import pytest
import torch

from vpr_ros.models import create_model, get_spec, list_models
from vpr_ros.models.dinov2 import round_to_patch

TINY_VIT = dict(embed_dim=32, depth=2, num_heads=2)
TINY_AGG = {'gem': {}, 'boq': dict(num_queries=4, row_dim=4),
            'salad': dict(num_clusters=4, cluster_dim=8, token_dim=8, hidden=16)}


def _tiny_kwargs(name):
    if name.startswith('dinov2_'):
        return dict(TINY_VIT, input_size=56, **TINY_AGG[name.rsplit('_', 1)[-1]])
    return dict(input_size=64)


def _check(model, batch=2):
    model.eval()
    with torch.no_grad():
        y = model(torch.randn(batch, 3, *model.input_size))
    assert y.shape == (batch, model.dim)
    assert torch.allclose(y.norm(dim=-1), torch.ones(batch), atol=1e-5)
    return y


@pytest.mark.parametrize('name', list_models())
def test_every_registered_model_builds_and_runs(name):
    model = create_model(name, **_tiny_kwargs(name))
    assert model.name == name
    _check(model)


def test_zoo_contents_and_roles():
    names = set(list_models())
    for size in 'sblg':
        for reg in ('', '_reg'):
            for agg in ('gem', 'boq', 'salad'):
                assert f'dinov2_vit{size}14{reg}_{agg}' in names
    assert 'efficientnet_lite0_gem' in list_models('gallery')
    assert 'efficientnet_lite0_query' in list_models('query')
    assert 'efficientvit_b2' in list_models('query')
    assert get_spec('dinov2_vitb14_boq').input_size == (322, 322)
    assert get_spec('dinov2_vitb14_salad').input_size == (224, 224)


def test_real_width_boq_and_salad_on_vitb14():
    boq = create_model('dinov2_vitb14_boq', input_size=28)
    assert boq.dim == 12288 and isinstance(boq.projection, torch.nn.Identity)
    salad = create_model('dinov2_vitb14_reg_salad', input_size=126, depth=1)
    assert salad.dim == 8448 and isinstance(salad.projection, torch.nn.Identity)
    _check(salad, batch=1)


def test_dim_option_sets_native_width_or_projects():
    base = dict(TINY_VIT, input_size=56)
    boq = create_model('dinov2_vits14_boq', dim=64, num_queries=4, **base)
    assert boq.dim == 64 and isinstance(boq.projection, torch.nn.Identity)  # 16 x 4 rows
    salad = create_model('dinov2_vits14_salad', dim=32, num_clusters=4, token_dim=8,
                         hidden=16, **base)
    assert salad.dim == 32 and isinstance(salad.projection, torch.nn.Identity)
    odd = create_model('dinov2_vits14_gem', dim=50, **base)
    assert isinstance(odd.projection, torch.nn.Linear)
    _check(odd)
    query = create_model('efficientvit_b2', dim=48, input_size=64)
    assert _check(query).shape[1] == 48


def test_input_size_rounds_to_multiple_of_14():
    assert round_to_patch(100) == (98, 98)
    assert round_to_patch((230, 300)) == (224, 294)
    model = create_model('dinov2_vits14_gem', input_size=(60, 80), **TINY_VIT)
    assert model.input_size == (56, 84)
    _check(model, batch=1)


def test_freeze_blocks_leaves_those_params_without_grad():
    model = create_model('dinov2_vits14_reg_gem', freeze_blocks=1, input_size=28, **TINY_VIT)
    vit = model.backbone.vit
    model(torch.randn(2, 3, 28, 28)).sum().backward()
    for p in list(vit.blocks[0].parameters()) + [vit.cls_token, vit.reg_token, vit.pos_embed]:
        assert not p.requires_grad and p.grad is None
    assert all(p.grad is not None for p in vit.blocks[1].parameters())
    with pytest.raises(ValueError, match='freeze_blocks'):
        create_model('dinov2_vits14_gem', freeze_blocks=3, **TINY_VIT)


def test_query_backbones_run_at_native_size():
    for name in ('efficientvit_b2', 'mobilevitv2_100', 'mobilenetv4_conv_small'):
        model = create_model(name, dim=256)
        assert model.input_size == get_spec(name).input_size
        _check(model, batch=1)


def test_unknown_option_is_rejected_clearly():
    with pytest.raises(TypeError, match='unknown options'):
        create_model('dinov2_vits14_gem', bogus=1, **TINY_VIT)


def test_aggregators_declare_their_width_and_compose_uses_it():
    from vpr_ros.models import compose
    from vpr_ros.models.aggregators import BoQ, GeM, SALAD
    from vpr_ros.models.dinov2 import AGGREGATORS, SIZES
    for agg, head in AGGREGATORS.items():
        for size, (_, width) in SIZES.items():
            assert get_spec(f'dinov2_vit{size}14_{agg}').dim == head.cls.output_width(width)
    boq = BoQ(32, num_queries=4, row_dim=4)
    assert boq.out_dim == BoQ.output_width(32, row_dim=4) == 64
    assert SALAD(32, num_clusters=4, cluster_dim=8, token_dim=8).out_dim == 40
    spec = get_spec('resnet18_gem')
    model = compose(torch.nn.Conv2d(3, 8, 3), GeM(in_dim=8), spec=spec, dim=5)
    assert model.dim == 5 and model.projection.in_features == 8
    with pytest.raises(ValueError, match='output width'):
        compose(torch.nn.Conv2d(3, 8, 3), GeM(), spec=spec)
