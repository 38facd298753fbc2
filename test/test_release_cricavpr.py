"""CricaVPR.pth (release layout) loads into cricavpr_vitb14 with parity to the official code.

Separate file from test_release_parity.py: the official ViT-B/14 at 224x224 is the slow one.
"""
from __future__ import annotations

import sys

import pytest
import torch

from test_release_parity import compare, perturb, reference
from vpr_ros.models import create_model


def test_cricavpr_release(tmp_path):
    root = reference() / 'cricavpr'
    sys.path.insert(0, str(root))
    try:
        import network
        torch.manual_seed(0)
        ref = perturb(network.CricaVPRNet())
    finally:
        sys.path.remove(str(root))
    path = tmp_path / 'CricaVPR.pth'
    torch.save(ref.state_dict(), path)
    model = create_model('cricavpr_vitb14', pretrained=True, checkpoint=str(path)).eval()
    assert model.create_kwargs['cross_image'] is True  # the release carries its encoder
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        compare('CricaVPR', model(x), ref(x))
    with pytest.raises(ValueError, match='unexpected'):
        create_model('cricavpr_vitb14', checkpoint=str(path), cross_image=False)
