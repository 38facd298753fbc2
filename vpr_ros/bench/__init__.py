"""``vpr-ros bench``: the real-time budget of the product, measured side by side in one run.

(a) query network vs the DINOv2-B/14 gallery model: batch-1 CPU latency, torch and
onnxruntime, and their ratio; (b) the query_encoder node's sustained rate, inference time and
dropped frames at 30 Hz over DDS; (c) matcher top-k latency and R@1 loss (compressed vs exact)
on 10k / 100k / 1M synthetic places; (d) camera frame -> pose prior latency with the three
nodes; (e) RSS of each node, the matcher holding the biggest map. Prints ONE markdown table
with PASS/FAIL per floor and writes ``bench.json`` and ``bench.md`` to ``--out``.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import List, Tuple


@dataclasses.dataclass
class BenchConfig:
    """Settings of ``vpr-ros bench`` (every field is a --flag)."""

    out: str = 'runs/bench'                         # bench.json, bench.md, node logs
    cache: str = 'runs/bench_cache'                 # synthetic maps and query networks, reused
    sections: List[str] = dataclasses.field(default_factory=lambda: ['models', 'matcher',
                                                                     'graph'])
    # (a) models
    query_model: str = 'mobilenetv3_small'
    gallery_model: str = 'dinov2_vitb14_boq'
    reference_models: List[str] = dataclasses.field(
        default_factory=lambda: ['efficientnet_lite0_gem'])
    input_size: int = 224
    threads: int = 1                                # same for every model (torch + ort)
    model_runs: int = 40
    dim: int = 1280                                 # descriptor width of the product's maps
    # (c) matcher
    map_sizes: List[int] = dataclasses.field(default_factory=lambda: [10_000, 100_000,
                                                                      1_000_000])
    matcher_dims: List[int] = dataclasses.field(default_factory=lambda: [1280])
    matcher_index: str = ''                         # '' = index.ivfpq_rerank_for(n, dim)
    nprobe: int = 0                                 # 0 = the index's default
    matcher_queries: int = 300
    exact_queries: int = 10
    top_k: int = 10
    # (b, d, e) graph over DDS
    node_backend: str = 'onnxruntime'
    node_threads: int = 1
    node_input_size: int = 224
    frame_size: Tuple[int, int] = (480, 640)        # camera frame height, width (JPEG)
    jpeg_quality: int = 90
    distinct_frames: int = 30
    rate_hz: float = 30.0
    warmup_s: float = 3.0
    duration_s: float = 30.0
    drain_s: float = 3.0
    startup_timeout_s: float = 300.0
    graph_map_places: int = 0                       # 0 = the largest of map_sizes
    # floors
    min_speedup: float = 10.0
    min_rate_hz: float = 30.0
    max_match_p99_ms: float = 5.0
    max_r1_loss_pts: float = 1.0
    max_e2e_p99_ms: float = 50.0
    max_dropped_pct: float = 1.0
    max_rss_mb: float = 2048.0


def add_arguments(parser) -> None:
    """One --flag per BenchConfig field (lists take several values)."""
    from vpr_ros.mapstore.bench import _count
    for f in dataclasses.fields(BenchConfig):
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        flag = '--' + f.name.replace('_', '-')
        if isinstance(default, (list, tuple)):
            kind = _count if f.name == 'map_sizes' else type(default[0]) if default else str
            parser.add_argument(flag, nargs='*' if isinstance(default, list) else len(default),
                                type=kind, default=default, help=f'default {default}')
        else:
            parser.add_argument(flag, type=type(default), default=default,
                                help=f'default {default!r}')


def run_bench(cfg: BenchConfig, log=print) -> dict:
    """Measure the selected sections; the result dict (also written to cfg.out)."""
    from vpr_ros.bench import report
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {'machine': report.machine(), 'load_start': report.loadavg(),
           'config': dataclasses.asdict(cfg), 'started': time.strftime('%Y-%m-%dT%H:%M:%SZ',
                                                                       time.gmtime())}
    log(f'[bench] {res["machine"]}; load average {res["load_start"]}')
    if 'models' in cfg.sections:
        from vpr_ros.bench.models import bench_models
        res['models'] = bench_models(cfg, log)
    if 'matcher' in cfg.sections:
        from vpr_ros.bench.matcher import bench_matcher
        res['matcher'] = bench_matcher(cfg, log)
    if 'graph' in cfg.sections:
        from vpr_ros.bench.graph import run_graph, summarize
        from vpr_ros.bench.matcher import cached_map
        from vpr_ros.mapstore.index import ivfpq_rerank_for
        n = cfg.graph_map_places or max(cfg.map_sizes)
        index = cfg.matcher_index or ivfpq_rerank_for(n, cfg.dim)
        info = cached_map(Path(cfg.cache), n, cfg.dim, index, log=log)
        part = summarize(run_graph(cfg, info['path'], out, log), cfg)
        part['memory']['map_places'] = n
        res.update(part)
    res['load_end'] = report.loadavg()
    res['floors'] = report.floors(res, cfg)
    res['markdown'] = report.markdown(res, cfg)
    (out / 'bench.json').write_text(json.dumps(res, indent=2))
    (out / 'bench.md').write_text(res['markdown'] + '\n')
    return res


def run(args) -> int:
    """CLI entry: measure, print the table; exit 0 (floors are reported, not enforced)."""
    cfg = BenchConfig(**{k: tuple(v) if isinstance(v, list) and k == 'frame_size' else v
                         for k, v in vars(args).items()})
    res = run_bench(cfg)
    print('\n' + res['markdown'], flush=True)
    print(f'\n[bench] wrote {Path(cfg.out) / "bench.json"} and {Path(cfg.out) / "bench.md"}')
    return 0
