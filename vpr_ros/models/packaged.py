"""Models whose trained weights ship inside the vpr_ros package (``vpr_ros/weights/``).

Registered (one entry each in ``PACKAGED``): EfficientNet-Lite + GeM (1280-d) gallery models
fine-tuned for place recognition on synthetic towns by vpr_ros.training.gallery_finetune from
the ImageNet weights; (``QUERY_PACKAGED``) asymmetric query networks trained by `vpr-ros train
asym` to be searched against one packaged gallery's maps (``compatible_with`` in the file);
``vpr_ros/weights/<name>.md`` holds each one's data and recall.
The files are float16 safetensors in the vpr_ros checkpoint format; they load into float32.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Tuple

from vpr_ros.models.base import VPRModel
from vpr_ros.models.efficientnet_lite import LITE_MEAN, LITE_STD, build_lite
from vpr_ros.models.spec import ModelSpec, register_model
from vpr_ros.shipped_queries import PackagedQuery, QUERY_PACKAGED  # noqa: F401 (API)

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / 'weights'


@dataclasses.dataclass(frozen=True)
class Packaged:
    """A shipped gallery model: the EfficientNet-Lite variant, its input size and its file."""

    name: str
    variant: int
    input_size: Tuple[int, int]  # (h, w) it runs at
    description: str
    kind: str = 'gem'            # 'gem' (one scale) | 'msgem' (GeM averaged over 2 scales)

    @property
    def file(self) -> str:
        return f'{self.name}.safetensors'


PACKAGED = {p.name: p for p in (
    Packaged('efficientnet_lite0_vpr', 0, (168, 224),
             'EfficientNet-Lite0 + GeM fine-tuned for VPR (multi-similarity loss) on '
             'synthetic towns, from ImageNet weights'),
    Packaged('efficientnet_lite2_vpr', 2, (336, 448),
             'EfficientNet-Lite2 fine-tuned for VPR at 240x320 on synthetic towns (ImageNet '
             'start); run at 336x448 and 0.71x of it, GeM averaged over the 2 scales', 'msgem'),
    Packaged('efficientnet_lite2_vpr24', 2, (336, 448),
             'efficientnet_lite2_vpr trained further on 24 synthetic towns (twice its data, the '
             'towns of the asymmetric table); run at 336x448 and 0.71x, GeM over 2 scales',
             'msgem'),
)}


def packaged_name(base_model: str) -> str:
    """The packaged name of a fine-tuned ``efficientnet_lite{i}_gem`` (its ``_vpr`` twin)."""
    name = base_model.replace('_gem', '_vpr')
    if name not in PACKAGED:
        raise ValueError(f'no packaged model for {base_model!r}; known: {", ".join(PACKAGED)}')
    return name


def to_multiscale_state(state: dict) -> dict:
    """Keys of a one-scale GeM model's state dict renamed for its multi-scale (msgem) form."""
    out = {}
    for k, v in state.items():
        k = 'backbone.backbone.' + k[len('backbone.'):] if k.startswith('backbone.') else k
        out['aggregator.gem.p' if k == 'aggregator.p' else k] = v
    return out


def from_multiscale_state(state: dict) -> dict:
    """The inverse of to_multiscale_state: a multi-scale (msgem) state dict in one-scale keys
    (e.g. to start a one-scale query network from a multi-scale gallery model)."""
    out = {}
    for k, v in state.items():
        if k.startswith('backbone.backbone.'):
            k = 'backbone.' + k[len('backbone.backbone.'):]
        out['aggregator.p' if k == 'aggregator.gem.p' else k] = v
    return out


def packaged_weights_path(filename: str) -> Path:
    """Path of a weights file shipped in vpr_ros/weights/ (FileNotFoundError if absent)."""
    path = WEIGHTS_DIR / filename
    if not path.is_file():
        raise FileNotFoundError(f'packaged weights {path} are missing: reinstall vpr_ros with its '
                                f'package data (setup.py package_data vpr_ros/weights/*)')
    return path


def load_packaged(model: VPRModel, filename: str) -> VPRModel:
    """Load the shipped weights ``filename`` into ``model`` (strict; float16 -> model dtype)."""
    from vpr_ros.models.checkpoint_file import CheckpointError, read_checkpoint
    state, meta = read_checkpoint(str(packaged_weights_path(filename)))
    if meta['name'] != model.name:
        raise CheckpointError(f'{filename} holds {meta["name"]!r}, not {model.name!r}')
    model.load_state_dict(state, strict=True)
    return model


def _packaged_spec(entry, role: str) -> ModelSpec:
    """The registry entry of a shipped network (1280-d, Lite mean/std, weights in the package)."""
    return ModelSpec(name=entry.name, role=role, input_size=entry.input_size, dim=1280,
                     mean=LITE_MEAN, std=LITE_STD,
                     weights=f'vpr_ros/weights/{entry.file} (packaged)',
                     description=entry.description)


def _register(entry: Packaged) -> None:
    spec = _packaged_spec(entry, 'gallery')

    @register_model(spec)
    def _factory(spec, pretrained=False, input_size=None, dim=None, checkpoint=''):
        if dim not in (None, spec.dim):
            raise ValueError(f'{spec.name} is {spec.dim}-d (no projection), got dim={dim}')
        if checkpoint:
            raise ValueError(f'{spec.name} loads its packaged weights; for other weights use '
                             f'load_checkpoint(PATH)')
        model = build_lite(spec, entry.variant, entry.kind, pretrained=False,
                           input_size=input_size)
        return load_packaged(model, entry.file) if pretrained else model


for _entry in PACKAGED.values():
    _register(_entry)


def _register_query(entry: PackagedQuery) -> None:
    gallery = PACKAGED[entry.gallery]
    spec = _packaged_spec(entry, 'query')

    @register_model(spec)
    def _factory(spec, pretrained=False, input_size=None, dim=None, checkpoint=''):
        if dim not in (None, spec.dim) or checkpoint:
            raise ValueError(f'{spec.name} is the packaged {spec.dim}-d query network of '
                             f'{gallery.name}; for other weights use load_checkpoint(PATH)')
        model = build_lite(spec, entry.variant, 'query', pretrained=False, dim=spec.dim,
                           input_size=input_size)
        return load_packaged(model, entry.file) if pretrained else model


for _query in QUERY_PACKAGED.values():
    _register_query(_query)
