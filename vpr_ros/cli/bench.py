"""``vpr-ros bench``: the real-time budget of the product, measured side by side in one run.

(a) query network vs the DINOv2-B/14 gallery model (vpr_ros.bench.models); (b, d, e) the three
nodes over DDS (vpr_ros.graph.bench_graph); (c) the matcher on synthetic maps
(vpr_ros.bench.matcher). Prints ONE markdown table with PASS/FAIL per floor and writes
``bench.json`` and ``bench.md`` to ``--out``. Settings: vpr_ros.bench.BenchConfig.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from vpr_ros.bench import BenchConfig, report
from vpr_ros.cli.dataclass_args import add_dataclass_arguments, dataclass_from_args
from vpr_ros.bench.map_models import parse_count


def add_arguments(parser) -> None:
    """One --flag per BenchConfig field (lists take several values)."""
    add_dataclass_arguments(parser, BenchConfig, overrides={'map_sizes': {'type': parse_count}})


def run_bench(cfg: BenchConfig, log=print) -> dict:
    """Measure the selected sections; the result dict (also written to cfg.out)."""
    from vpr_ros.bench.pair import resolve_models
    cfg = resolve_models(cfg, log)  # '' models: the shipped pair (or symmetric), logged
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
        from vpr_ros.graph.bench_graph import run_graph, summarize
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
    cfg = dataclass_from_args(BenchConfig, args)
    res = run_bench(cfg)
    print('\n' + res['markdown'], flush=True)
    print(f'\n[bench] wrote {Path(cfg.out) / "bench.json"} and {Path(cfg.out) / "bench.md"}')
    return 0
