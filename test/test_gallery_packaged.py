"""The packaged gallery models (every entry of packaged.PACKAGED): shipped weights, registry,
runtime."""
import json

import numpy as np
import pytest
import torch

from vpr_ros.models import packaged
from vpr_ros.models.checkpoint import load_checkpoint, read_checkpoint
from vpr_ros.models.registry import create_model, get_spec, list_models
from vpr_ros.models.runtime import load_encoder

ENTRIES = list(packaged.PACKAGED.values())
IDS = [e.name for e in ENTRIES]


@pytest.fixture(scope='module', params=ENTRIES, ids=IDS)
def entry(request):
    return request.param


@pytest.fixture(scope='module')
def model(entry):
    return create_model(entry.name, pretrained=True).eval()


@pytest.fixture(scope='module')
def images():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (2, 24, 32, 3)).astype(np.uint8)
    return np.stack([np.kron(b, np.ones((10, 10, 1), np.uint8)) for b in base])  # (2,240,320,3)


def _weights(entry):
    return packaged.WEIGHTS_DIR / entry.file


def test_registered_as_gallery_model(entry):
    spec = get_spec(entry.name)
    assert entry.name in list_models('gallery')
    assert spec.role == 'gallery' and spec.dim == 1280 and spec.input_size == entry.input_size
    assert spec.mean == spec.std == (0.5, 0.5, 0.5)
    assert spec.weights.startswith(f'vpr_ros/weights/{entry.file}')


def test_shipped_file_is_small_float16_checkpoint(entry):
    path = _weights(entry)
    assert path.is_file() and path.stat().st_size < 20 * 2**20
    state, meta = read_checkpoint(str(path))
    assert meta['name'] == entry.name and meta['dim'] == 1280
    assert tuple(meta['input_size']) == entry.input_size
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}
    card = json.loads((packaged.WEIGHTS_DIR / f'{entry.name}.json').read_text())
    assert card['name'] == entry.name and card['file'] == entry.file
    assert not set(card['training']['train_seeds']) & set(card['evaluation']['seeds'])


def test_pretrained_loads_shipped_weights(entry, model):
    state, _ = read_checkpoint(str(_weights(entry)))
    own = model.state_dict()
    assert set(own) == set(state)
    for k, v in state.items():
        assert torch.equal(own[k], v.to(own[k].dtype)), k
    fresh = create_model(entry.name, pretrained=False).state_dict()  # random init
    head = next(k for k in own if k.endswith('conv_head.weight'))
    assert not torch.equal(fresh[head], own[head])


def test_descriptors_normalised_deterministic_and_not_imagenet(entry, model, images):
    a, b = model.encode(images), model.encode(images)
    assert a.shape == (2, 1280) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, b)
    imagenet = create_model(f'efficientnet_lite{entry.variant}_{entry.kind}', pretrained=True,
                            input_size=entry.input_size).encode(images)
    assert float(np.min(np.sum(a * imagenet, axis=1))) < 0.99


def test_load_encoder_and_load_checkpoint_give_the_trained_model(entry, model, images):
    enc = load_encoder(model=entry.name)
    assert enc.name == entry.name and enc.dim == 1280 and enc.input_size == entry.input_size
    np.testing.assert_allclose(enc.encode(images), model.encode(images), atol=1e-5)
    net, meta = load_checkpoint(str(_weights(entry)))
    assert meta['name'] == entry.name
    np.testing.assert_allclose(net.encode(images), model.encode(images), atol=1e-5)


def test_rejects_other_widths_and_weights(entry):
    with pytest.raises(ValueError, match='1280'):
        create_model(entry.name, dim=512)
    with pytest.raises(ValueError, match='packaged'):
        create_model(entry.name, checkpoint='some.pth')


def test_one_scale_finetune_exports_to_the_multiscale_package(tmp_path, images):
    """A gallery fine-tuned at one scale (efficientnet_lite2_gem) is shipped as its
    multi-scale twin: the same weights, descriptors = mean of the per-scale GeM vectors."""
    from vpr_ros.training.gallery_finetune import export_packaged
    one = create_model('efficientnet_lite2_gem', pretrained=True, input_size=(96, 128)).eval()
    path = tmp_path / 'lite2_vpr.safetensors'
    export_packaged(one, str(path))
    net, meta = load_checkpoint(str(path))
    assert meta['name'] == 'efficientnet_lite2_vpr'
    net = net.float().eval()
    x = torch.rand(1, 3, 96, 128) * 2 - 1
    with torch.no_grad():
        small = torch.nn.functional.interpolate(x, scale_factor=0.7071, mode='bilinear',
                                                align_corners=False)
        one16 = one.half().float()
        want = torch.nn.functional.normalize(
            torch.nn.functional.normalize(one16(x), dim=-1)
            + torch.nn.functional.normalize(one16(small), dim=-1), dim=-1)
        got = torch.nn.functional.normalize(net.forward(x), dim=-1)
    assert float((want * got).sum()) > 0.999
