"""Models whose trained weights ship inside the vpr_ros package (``vpr_ros/weights/``).

Registered: ``efficientnet_lite0_vpr`` (gallery), EfficientNet-Lite0 + GeM (1280-d) fine-tuned
for place recognition on synthetic towns by vpr_ros.training.gallery_finetune from the
ImageNet weights; see ``vpr_ros/weights/efficientnet_lite0_vpr.md`` for data and recall.
The file is float16 safetensors in the vpr_ros checkpoint format; it loads into float32.
"""
from __future__ import annotations

from pathlib import Path

from vpr_ros.models.base import VPRModel
from vpr_ros.models.efficientnet_lite import LITE_MEAN, LITE_STD, build_lite
from vpr_ros.models.registry import ModelSpec, register_model

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / 'weights'
LITE0_VPR_FILE = 'efficientnet_lite0_vpr.safetensors'


def packaged_weights_path(filename: str) -> Path:
    """Path of a weights file shipped in vpr_ros/weights/ (FileNotFoundError if absent)."""
    path = WEIGHTS_DIR / filename
    if not path.is_file():
        raise FileNotFoundError(f'packaged weights {path} are missing: reinstall vpr_ros with its '
                                f'package data (setup.py package_data vpr_ros/weights/*)')
    return path


def load_packaged(model: VPRModel, filename: str) -> VPRModel:
    """Load the shipped weights ``filename`` into ``model`` (strict; float16 -> model dtype)."""
    from vpr_ros.models.checkpoint import CheckpointError, read_checkpoint
    state, meta = read_checkpoint(str(packaged_weights_path(filename)))
    if meta['name'] != model.name:
        raise CheckpointError(f'{filename} holds {meta["name"]!r}, not {model.name!r}')
    model.load_state_dict(state, strict=True)
    return model


LITE0_VPR = ModelSpec(
    name='efficientnet_lite0_vpr', role='gallery', input_size=(168, 224), dim=1280,
    mean=LITE_MEAN, std=LITE_STD, weights=f'vpr_ros/weights/{LITE0_VPR_FILE} (packaged)',
    description='EfficientNet-Lite0 + GeM fine-tuned for VPR (multi-similarity loss) on '
                'synthetic towns, from ImageNet weights')


@register_model(LITE0_VPR)
def _lite0_vpr(spec, pretrained=False, input_size=None, dim=None, checkpoint=''):
    if dim not in (None, spec.dim):
        raise ValueError(f'{spec.name} is {spec.dim}-d (no projection), got dim={dim}')
    model = build_lite(spec, 0, 'gem', pretrained=False, input_size=input_size)
    if checkpoint:
        raise ValueError(f'{spec.name} loads its packaged weights; for other weights use '
                         f'load_checkpoint(PATH)')
    return load_packaged(model, LITE0_VPR_FILE) if pretrained else model
