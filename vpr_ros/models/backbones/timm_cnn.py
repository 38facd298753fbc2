"""Any timm CNN (or hybrid) as a backbone: its last feature map (B,C,H,W)."""
from __future__ import annotations

import timm
from torch import nn


class TimmFeatureMap(nn.Module):
    """The last feature map (B,C,H,W) of a timm model (classifier and pooling removed)."""

    def __init__(self, timm_name: str, pretrained: bool = False):
        super().__init__()
        # forward_features never applies the head, so the pooling can stay (some timm models,
        # e.g. efficientvit_b2, refuse global_pool='').
        try:  # timm downloads through huggingface_hub (HTTPS_PROXY, HF_ENDPOINT honoured)
            self.net = timm.create_model(timm_name, pretrained=pretrained, num_classes=0)
        except (OSError, RuntimeError) as e:  # offline, hub errors: name the file needed
            if not pretrained:
                raise
            raise FileNotFoundError(
                f'no pretrained weights for timm {timm_name!r}: {hub_file(timm_name)} could not '
                f'be downloaded nor found in the local hub cache ({type(e).__name__}: '
                f'{str(e)[:160]}). Download it on a connected machine and give it as the '
                f'weights file (--checkpoint FILE with --model), or set HTTPS_PROXY / '
                f'HF_ENDPOINT') from e
        self.out_channels = self.net.num_features

    def forward(self, x):
        return self.net.forward_features(x)


def hub_file(timm_name: str) -> str:
    """The URL of the weights file timm downloads for ``timm_name`` (its default tag)."""
    try:
        cfg = timm.models.get_pretrained_cfg(timm_name)
        repo = getattr(cfg, 'hf_hub_id', '') or ''
    except Exception:  # noqa: BLE001 - an unknown name: the usual repository
        repo = ''
    return f'https://huggingface.co/{repo or "timm/" + timm_name}/resolve/main/model.safetensors'
