"""Query networks exported to ONNX, run with onnxruntime: the robot-side encoder, no torch.

An .onnx file written by ``vpr-ros export-onnx`` carries its model's name, width, input size,
mean/std and ``compatible_with`` as JSON (metadata key 'vpr_ros'); an ONNX file made elsewhere
may have them in a sidecar ``<file>.onnx.json`` instead. Frames are resized and normalised in
NumPy (vpr_ros.preprocess), so neither torch nor the model registry is imported: this module
imports only NumPy (and onnxruntime when a session is made). The torch backends
(vpr_ros.models.runtime) subclass ``Encoder``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vpr_ros.preprocess import network_input

META_KEY = 'vpr_ros'
META_FIELDS = ('name', 'dim', 'input_size', 'mean', 'std')


class Encoder:
    """uint8 RGB image(s) -> L2-normalised float32 descriptors (B, dim)."""

    def __init__(self, meta: dict, backend: str):
        self.name = meta['name']
        self.dim = int(meta['dim'])
        self.compatible_with = meta.get('compatible_with')
        # sha256 of the weights (models/checkpoint.weights_fingerprint); '' when unknown
        self.weights_fingerprint = str(meta.get('weights_fingerprint') or '')
        self.input_size = tuple(int(v) for v in meta['input_size'])
        self.mean = tuple(meta['mean'])
        self.std = tuple(meta['std'])
        self.backend = backend

    def _run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _preprocess(self, arr: np.ndarray) -> np.ndarray:
        """uint8 RGB (H,W,3) or (B,H,W,3) -> normalised float32 (B,3,h,w), in NumPy."""
        return network_input(arr, self.input_size, self.mean, self.std)

    def encode(self, rgb: np.ndarray) -> np.ndarray:
        """Encode a uint8 RGB image (H,W,3) or batch (B,H,W,3)."""
        arr = np.asarray(rgb)
        if arr.dtype != np.uint8:
            raise ValueError(f'encode expects uint8 RGB images, got dtype {arr.dtype}')
        out = np.asarray(self._run(self._preprocess(arr)), dtype=np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def warmup(self, runs: int = 1) -> None:
        """Run the model on a black image so the first real frame is not slow."""
        for _ in range(runs):
            self.encode(np.zeros((*self.input_size, 3), np.uint8))


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


def sidecar_path(onnx_path) -> Path:
    """Where the metadata of an ONNX file without embedded vpr_ros metadata is looked for."""
    return Path(str(onnx_path) + '.json')


def read_onnx_meta(session, path=None) -> dict:
    """The vpr_ros metadata of an onnxruntime InferenceSession (embedded by export-onnx), else
    of the sidecar ``<path>.json``; ValueError when neither has it."""
    props = session.get_modelmeta().custom_metadata_map
    if META_KEY in props:
        return json.loads(props[META_KEY])
    side = sidecar_path(path) if path else None
    if side is not None and side.is_file():
        meta = json.loads(side.read_text())
        missing = [k for k in META_FIELDS if k not in meta]
        if missing:
            raise ValueError(f'{side} lacks {", ".join(missing)} (needs {", ".join(META_FIELDS)})')
        return meta
    raise ValueError('this ONNX file has no vpr_ros metadata: export it with "vpr-ros '
                     'export-onnx" so that name, dim and input size travel with it, or write '
                     f'them ({", ".join(META_FIELDS)}) to {side or "<file>.onnx.json"}')


class OnnxEncoder(Encoder):
    """Encoder running an ONNX graph exported by vpr_ros.models.onnx_export.export_onnx."""

    def __init__(self, source, threads: int = 0, spinning: bool = True):
        self.session = ort_session(source, threads, spinning)
        path = source if isinstance(source, (str, Path)) else None
        super().__init__(read_onnx_meta(self.session, path), 'onnxruntime')
        self._input = self.session.get_inputs()[0].name
        self._fixed_batch = self.session.get_inputs()[0].shape[0]

    def _run(self, x):
        if isinstance(self._fixed_batch, int) and x.shape[0] != self._fixed_batch:
            if self._fixed_batch != 1:
                raise ValueError(f'this ONNX file has a fixed batch of {self._fixed_batch}, got '
                                 f'{x.shape[0]} images; export with a dynamic batch')
            return np.concatenate([self.session.run(None, {self._input: x[i:i + 1]})[0]
                                   for i in range(x.shape[0])])
        return self.session.run(None, {self._input: x})[0]


def load_onnx_encoder(path: str, threads: int = 0, spinning: bool = True, input_size=None,
                      model: str = '') -> OnnxEncoder:
    """The onnxruntime encoder of an .onnx file, checked against the ``input_size`` (h, w)
    and ``model`` name asked for (either may be empty: whatever the file holds)."""
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    enc = OnnxEncoder(str(path), threads, spinning)
    if input_size and tuple(int(v) for v in input_size) != enc.input_size:
        raise ValueError(f'{path!r} was exported for input {enc.input_size}, not '
                         f'{tuple(input_size)}: export it again with --input-size')
    if model and model != enc.name:
        raise ValueError(f'{path!r} holds {enc.name!r}, not {model!r}')
    return enc
