"""The packaged gallery model efficientnet_lite0_vpr: shipped weights, registry, runtime."""
import json

import numpy as np
import pytest
import torch

from vpr_ros.models import packaged
from vpr_ros.models.checkpoint import load_checkpoint, read_checkpoint
from vpr_ros.models.registry import create_model, get_spec, list_models
from vpr_ros.models.runtime import load_encoder

NAME = 'efficientnet_lite0_vpr'
WEIGHTS = packaged.WEIGHTS_DIR / packaged.LITE0_VPR_FILE
CARD = packaged.WEIGHTS_DIR / 'efficientnet_lite0_vpr.json'


@pytest.fixture(scope='module')
def model():
    return create_model(NAME, pretrained=True).eval()


@pytest.fixture(scope='module')
def images():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (2, 24, 32, 3)).astype(np.uint8)
    return np.stack([np.kron(b, np.ones((10, 10, 1), np.uint8)) for b in base])  # (2,240,320,3)


def test_registered_as_gallery_model():
    spec = get_spec(NAME)
    assert NAME in list_models('gallery')
    assert spec.role == 'gallery' and spec.dim == 1280 and spec.input_size == (168, 224)
    assert spec.mean == spec.std == (0.5, 0.5, 0.5)
    assert spec.weights.startswith(f'vpr_ros/weights/{packaged.LITE0_VPR_FILE}')


def test_shipped_file_is_small_float16_checkpoint():
    assert WEIGHTS.is_file() and WEIGHTS.stat().st_size < 20 * 2**20
    state, meta = read_checkpoint(str(WEIGHTS))
    assert meta['name'] == NAME and meta['dim'] == 1280
    assert tuple(meta['input_size']) == get_spec(NAME).input_size
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}
    card = json.loads(CARD.read_text())
    assert card['name'] == NAME and card['file'] == packaged.LITE0_VPR_FILE
    assert not set(card['training']['train_seeds']) & set(card['evaluation']['seeds'])


def test_pretrained_loads_shipped_weights(model):
    state, _ = read_checkpoint(str(WEIGHTS))
    own = model.state_dict()
    assert set(own) == set(state)
    for k, v in state.items():
        assert torch.equal(own[k], v.to(own[k].dtype)), k
    fresh = create_model(NAME, pretrained=False).state_dict()  # random init
    assert not torch.equal(fresh['backbone.net.conv_head.weight'],
                           own['backbone.net.conv_head.weight'])


def test_descriptors_normalised_deterministic_and_not_imagenet(model, images):
    a, b = model.encode(images), model.encode(images)
    assert a.shape == (2, 1280) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, b)
    imagenet = create_model('efficientnet_lite0_gem', pretrained=True,
                            input_size=(168, 224)).encode(images)
    assert float(np.min(np.sum(a * imagenet, axis=1))) < 0.99


def test_load_encoder_and_load_checkpoint_give_the_trained_model(model, images):
    enc = load_encoder(model=NAME)
    assert enc.name == NAME and enc.dim == 1280 and enc.input_size == (168, 224)
    np.testing.assert_allclose(enc.encode(images), model.encode(images), atol=1e-5)
    net, meta = load_checkpoint(str(WEIGHTS))
    assert meta['name'] == NAME
    np.testing.assert_allclose(net.encode(images), model.encode(images), atol=1e-5)


def test_rejects_other_widths_and_weights():
    with pytest.raises(ValueError, match='1280'):
        create_model(NAME, dim=512)
    with pytest.raises(ValueError, match='packaged'):
        create_model(NAME, checkpoint='some.pth')
