"""Weights identity (issue 33 parts 3-4): plain weight files load, maps record the fingerprint of
the weights used, query/map compatibility compares fingerprints, untrained models are refused
for maps unless allowed, and `vpr-ros evaluate --model M --checkpoint PLAIN` works end to end."""
import json
import types

import numpy as np
import pytest
import torch

from vpr_ros.models.checkpoint import CheckpointError, weights_fingerprint
from vpr_ros.models.registry import create_model
from vpr_ros.models.runtime import build_torch_model, load_encoder
from vpr_ros.models.weights_source import (ALL_RANDOM, require_trained, untrained_parts,
                                           UntrainedWeightsError)
from vpr_ros.query_pipeline import check_query_compatible, IncompatibleQueryNetwork

MODEL, SIZE = 'efficientnet_lite0_gem', (64, 64)
pytestmark = pytest.mark.timeout(300)


def _perturbed_state(seed: int):
    net = create_model(MODEL, pretrained=True, input_size=SIZE)
    g = torch.Generator().manual_seed(seed)
    state = {k: v + 0.01 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v
             for k, v in net.state_dict().items()}
    return net, state


@pytest.mark.parametrize('ext', ['pth', 'safetensors'])
def test_plain_state_dict_loads_with_model_name(tmp_path, ext):
    net, state = _perturbed_state(1)
    net.load_state_dict(state)
    path = tmp_path / f'plain.{ext}'
    if ext == 'pth':
        torch.save({f'module.{k}': v for k, v in state.items()}, path)  # DDP prefix too
    else:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    enc = load_encoder(model=MODEL, checkpoint=str(path), input_size=SIZE)
    rgb = np.random.default_rng(0).integers(0, 255, (2, 48, 64, 3), np.uint8)
    np.testing.assert_allclose(enc.encode(rgb), net.encode(rgb), atol=1e-5)
    assert enc.weights_fingerprint == weights_fingerprint(net)


def test_a_vpr_ros_checkpoint_overrides_the_model_name(tmp_path):
    from vpr_ros.models.checkpoint import save_checkpoint
    net = create_model(MODEL, pretrained=True, input_size=SIZE)
    save_checkpoint(str(tmp_path / 'c.pt'), net)
    enc = load_encoder(model='mobilenetv3_small', checkpoint=str(tmp_path / 'c.pt'))
    assert enc.name == MODEL and enc.weights_fingerprint == weights_fingerprint(net)


def test_plain_file_of_another_model_names_expected_keys(tmp_path):
    path = tmp_path / 'other.pth'
    torch.save({'fc.weight': torch.zeros(2, 2)}, path)
    with pytest.raises(CheckpointError, match=r"state dict of efficientnet_lite0_gem.*Expected "
                                              r"the keys of create_model"):
        build_torch_model(model=MODEL, weights=str(path), input_size=SIZE)


def test_untrained_parts_are_found_and_refused():
    net, _ = build_torch_model(model='mobilenetv3_small', input_size=SIZE)
    assert net.untrained_parts == [ALL_RANDOM]
    with pytest.raises(UntrainedWeightsError, match='--allow-random-weights'):
        require_trained(net, False, 'a map')
    require_trained(net, True, 'a map')  # allowed explicitly
    proj = create_model(MODEL, pretrained=True, dim=64, input_size=SIZE)
    assert any('projection 1280 -> 64' in p for p in untrained_parts(proj))
    assert untrained_parts(create_model(MODEL, pretrained=True, input_size=SIZE)) == []


def _fake(name, dim, fp='', compat=None):
    return types.SimpleNamespace(name=name, dim=dim, weights_fingerprint=fp,
                                 compatible_with=compat)


def test_compatibility_compares_fingerprints_not_names():
    a, b = 'a' * 64, 'b' * 64
    check_query_compatible(_fake('other_name', 8, a), 'gallery', 8, a)  # same weights: ok
    with pytest.raises(IncompatibleQueryNetwork, match='aaaaaaaaaaaaaaaa.*bbbbbbbbbbbbbbbb'):
        check_query_compatible(_fake('gallery', 8, a), 'gallery', 8, b)  # same name, other w.
    trained = {'encoder': 'renamed', 'dim': 8, 'weights_fingerprint': a}
    check_query_compatible(_fake('q', 4, 'c' * 64, trained), 'gallery', 8, a)
    with pytest.raises(IncompatibleQueryNetwork, match='trained against gallery weights'):
        check_query_compatible(_fake('q', 4, '', dict(trained, encoder='gallery')),
                               'gallery', 8, b)
    check_query_compatible(_fake('gallery', 8), 'gallery', 8, a)  # old checkpoint: by name
    check_query_compatible(_fake('gallery', 8, a), 'gallery', 8, '')  # old map: by name


@pytest.fixture(scope='module')
def town(tmp_path_factory):
    """A 10-place generated town (VG layout) and a map of it built by the CLI."""
    from vpr_ros.cli import main
    tmp = tmp_path_factory.mktemp('town')
    assert main(['world', '--seed', '7', '--out', str(tmp / 'T'), '--places', '10',
                 '--conditions', 'day,dusk', '--formats', 'vg']) == 0
    vg = tmp / 'T' / 'test'
    assert main(['build-map', '--model', MODEL, '--input', str(vg), '--out', str(tmp / 'map'),
                 '--input-size', *map(str, SIZE), '--no-progress']) == 0
    return tmp, vg


def test_map_records_fingerprint_and_refuses_random_models(town, tmp_path, capsys):
    from vpr_ros.cli import main
    tmp, vg = town
    src = json.loads((tmp / 'map' / 'manifest.json').read_text())['encoder_source']
    ref, _ = build_torch_model(model=MODEL, input_size=SIZE)
    assert src['weights_fingerprint'] == weights_fingerprint(ref)
    args = ['build-map', '--model', 'mobilenetv3_small', '--input', str(vg),
            '--input-size', '32', '32', '--no-progress']
    capsys.readouterr()
    assert main(args + ['--out', str(tmp_path / 'refused')]) != 0
    assert 'mobilenetv3_small: untrained (random) parts' in capsys.readouterr().err
    assert main(args + ['--out', str(tmp_path / 'ok'), '--allow-random-weights']) == 0


def test_cli_evaluate_with_plain_weights_file(town, tmp_path, capsys):
    from vpr_ros.cli import main
    tmp, vg = town
    net = create_model(MODEL, pretrained=True, input_size=SIZE)
    plain = tmp_path / 'plain.pth'
    torch.save(net.state_dict(), plain)  # no vpr_ros metadata
    out = tmp_path / 'eval'
    assert main(['evaluate', '--map', str(tmp / 'map'), '--vg', str(vg / 'queries'),
                 '--model', MODEL, '--checkpoint', str(plain), '--input-size', *map(str, SIZE),
                 '--out', str(out)]) == 0
    rep = json.loads((out / 'report.json').read_text())
    assert rep['num_queries'] == 10 and rep['model']['model'] == MODEL
    # the same model name with other weights: refused, naming both fingerprints
    _, state = _perturbed_state(2)
    other = tmp_path / 'other.pth'
    torch.save(state, other)
    capsys.readouterr()
    assert main(['evaluate', '--map', str(tmp / 'map'), '--vg', str(vg / 'queries'),
                 '--model', MODEL, '--checkpoint', str(other), '--input-size', *map(str, SIZE),
                 '--out', str(tmp_path / 'eval2')]) == 2
    err = capsys.readouterr().err
    fp_map = json.loads((tmp / 'map' / 'manifest.json').read_text())[
        'encoder_source']['weights_fingerprint']
    assert 'not comparable' in err and fp_map[:16] in err


def test_timm_offline_names_the_file(monkeypatch):
    from vpr_ros.models.backbones import timm_cnn

    def offline(*a, **k):
        raise OSError('cannot reach huggingface.co')
    monkeypatch.setattr(timm_cnn.timm, 'create_model', offline)
    with pytest.raises(FileNotFoundError, match=r'huggingface.co/timm/mobilenetv3_small_100'
                                                r'.*model.safetensors.*--checkpoint'):
        timm_cnn.TimmFeatureMap('mobilenetv3_small_100', pretrained=True)


def test_training_cache_refuses_a_random_gallery():
    """`train asym` with a gallery that has untrained parts is refused before any feature is
    cached, unless allow_random_weights says so."""
    import dataclasses
    from vpr_ros.experiments.asym.inputs import load_gallery_model
    from vpr_ros.training.asym import AsymTrainConfig
    cfg = AsymTrainConfig(gallery_model='mobilenetv3_small', gallery_input_size=(32, 32))
    with pytest.raises(UntrainedWeightsError, match='a training cache'):
        load_gallery_model(cfg)
    assert load_gallery_model(dataclasses.replace(cfg, allow_random_weights=True)).dim > 0
