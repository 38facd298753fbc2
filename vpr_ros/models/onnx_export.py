"""Export a model to ONNX, check parity with onnxruntime, embed metadata (``vpr-ros export-onnx``).

The ONNX graph maps ``images`` (B,3,H,W) float32, already normalised, to ``descriptors``
(B,dim). The model's metadata (name, dim, input size, mean/std, compatible_with) is stored as
JSON under the metadata_props key 'vpr_ros', which ``load_encoder(backend='onnxruntime')`` reads
(vpr_ros.inference.read_onnx_meta, without torch); an ONNX file made by other tools can carry
the same JSON in a sidecar ``<file>.onnx.json``.
"""
from __future__ import annotations

import io
import json
import warnings
from typing import Optional

import numpy as np

# the reading side needs no torch: it lives with the onnxruntime encoder
from vpr_ros.inference import META_KEY, read_onnx_meta  # noqa: F401  (re-exported)


def export_onnx(model, meta: dict, out: Optional[str] = None, batch: Optional[int] = None,
                opset: int = 17) -> bytes:
    """Export ``model`` (eval mode) and return the ONNX bytes (also written to ``out``).

    ``batch=None`` exports a dynamic batch axis; an int fixes it.
    """
    import onnx
    import torch
    model = model.eval()
    h, w = meta['input_size']
    dummy = torch.randn(batch or 2, 3, int(h), int(w))
    buf = io.BytesIO()
    dyn = None if batch else {'images': {0: 'batch'}, 'descriptors': {0: 'batch'}}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (dummy,), buf, dynamo=False, input_names=['images'],
                          output_names=['descriptors'], dynamic_axes=dyn, opset_version=opset)
    proto = onnx.load_from_string(buf.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
    data = proto.SerializeToString()
    if out:
        with open(out, 'wb') as f:
            f.write(data)
    return data


def parity(model, onnx_bytes: bytes, batch: int = 2, seed: int = 0) -> float:
    """Max absolute difference between torch and onnxruntime outputs on random input."""
    import onnxruntime as ort
    import torch
    sess = ort.InferenceSession(onnx_bytes, providers=['CPUExecutionProvider'])
    meta = read_onnx_meta(sess)
    fixed = sess.get_inputs()[0].shape[0]
    n = fixed if isinstance(fixed, int) else batch
    h, w = meta['input_size']
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal(
        (n, 3, int(h), int(w))).astype(np.float32))
    with torch.inference_mode():
        ref = model.eval()(x).numpy()
    got = sess.run(None, {'images': x.numpy()})[0]
    return float(np.abs(ref - got).max())
