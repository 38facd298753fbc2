"""R@1 on seen and unseen conditions against query cost: the points a user picks from.

``python -m vpr_ros.experiments.asym.cost_curve --run RUN --out DIR`` reads a faithful-protocol
run (``vpr-ros train asym --preset faithful``: ``RUN/faithful.json`` and ``RUN/seed<N>/``) for
ours, the symmetric student and the gallery (R@1 averaged over the seeds), evaluates cheap
symmetric alternatives (a packaged gallery model at several input sizes searching its own map)
on the run's held-out towns, the shipped query networks (``--shipped``) searching the gallery's
map of those towns, and measures every network's cost side by side in one process (GFLOPs at
batch 1, one-thread torch and onnxruntime latency). Writes cost_curve.json,
cost_curve.md and cost_curve.png (R@1 against GFLOPs, seen and unseen panels).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

RUN_SYSTEMS = (('ours_asym', 'ours (AsymVPR)', 'query'),
               ('symmetric_student', 'student (symmetric)', 'query'),
               ('gallery_symmetric', 'gallery (symmetric)', 'gallery'))


def symmetric_recall(model, folders: Sequence[str], seen: Sequence[str],
                     database=None) -> Dict[str, float]:
    """R@1 (%) of ``model`` searching its own day map of each held-out town (or the map
    ``database(paths)`` encodes, e.g. the gallery's): seen (conditions in ``seen``) and unseen
    (every other query condition)."""
    from vpr_ros.experiments.asym import recall as ev
    hits, conds = [], []
    for folder in folders:
        sp = ev.read_split(folder)
        db = database(sp.db_paths) if database else ev.encode_paths(model, sp.db_paths)
        q = ev.encode_paths(model, sp.q_paths)
        hits.append(ev.recall_hits(q, db, sp.q_xy, sp.db_xy, 25.0, (1,))[:, 0])
        conds += list(sp.q_conditions)
    h, c = np.concatenate(hits), np.asarray(conds)
    is_seen = np.isin(c, list(seen))
    return {'seen': float(100 * h[is_seen].mean()), 'unseen': float(100 * h[~is_seen].mean()),
            'queries': int(len(h))}


def measure(run: Path, symmetric: Sequence[str], sizes: Sequence[Sequence[int]],
            runs: int = 20, shipped: Sequence[str] = ()) -> List[Dict]:
    """One row per point: label, kind, R@1 seen / unseen and the cost fields."""
    import torch
    from vpr_ros.experiments.asym.faithful import finished_reports
    from vpr_ros.experiments.asym.recall import onnx_latency, profile_models
    from vpr_ros.models.checkpoint import load_checkpoint
    from vpr_ros.models.registry import create_model
    torch.set_num_threads(1)
    summary = json.loads((run / 'faithful.json').read_text())
    seed, report = next(iter(finished_reports(run).items()))
    cfg = report['config']
    folders = [f for f in str(cfg['eval']).split(',') if f]
    held = [c for c in summary['seeds'][str(seed)]['seen']['conditions']]
    models, rows = {}, []
    for tag, label, side in RUN_SYSTEMS:
        r1 = {g: summary['mean_r1'][g].get(tag) for g in ('seen', 'unseen')}
        if None in r1.values():
            continue
        ckpt = run / f'seed{seed}' / f'{tag}.pt'
        models[label] = (create_model(cfg['gallery_model'], pretrained=True)
                         if side == 'gallery' else load_checkpoint(str(ckpt))[0])
        rows.append({'label': label, 'kind': 'run', **r1, 'seeds': len(summary['seeds'])})
    for name in symmetric:
        for size in sizes:
            m = create_model(name, pretrained=True, input_size=tuple(size))
            label = f'{name} {size[0]}x{size[1]} (symmetric)'
            models[label] = m
            rows.append({'label': label, 'kind': 'symmetric', 'seeds': 0,
                         **symmetric_recall(m, folders, held)})
    if shipped:
        database = _gallery_database(cfg, run)
        for name in shipped:
            m = create_model(name, pretrained=True)
            label = f'{name} {m.input_size[0]}x{m.input_size[1]} (shipped, asymmetric)'
            models[label] = m
            rows.append({'label': label, 'kind': 'shipped', 'seeds': 0,
                         **symmetric_recall(m, folders, held, database)})
    cost = profile_models(models, runs=runs, threads=1)
    ort = onnx_latency(models, runs=runs, threads=1, errors={})
    for row in rows:
        c = cost[row['label']]
        row.update(model=c['model'], input_size=c['input_size'], gflops=c['gflops'],
                   params_M=c['params_M'], torch_ms=c['latency_ms'],
                   onnxruntime_ms=ort.get(row['label']))
    return rows


def _gallery_database(cfg: Dict, run: Path):
    """paths -> the run's gallery descriptors of them, through the run's feature cache."""
    from vpr_ros.experiments.asym.heldout import cached_features_fn
    from vpr_ros.experiments.asym.inputs import load_gallery_model
    from vpr_ros.experiments.asym.reeval import train_config
    gcfg = train_config(cfg)
    return cached_features_fn(load_gallery_model(gcfg), cfg.get('cache_dir') or
                              str(run / 'cache'), gcfg)


def write(rows: List[Dict], out: Path, run: Path) -> None:
    """cost_curve.json / .md / .png into ``out``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    out.mkdir(parents=True, exist_ok=True)
    (out / 'cost_curve.json').write_text(json.dumps({'run': str(run), 'rows': rows}, indent=1))
    lines = ['| network | input | GFLOPs | torch ms | onnxruntime ms | R@1 seen | R@1 unseen |',
             '|---|---|---|---|---|---|---|']
    for r in sorted(rows, key=lambda r: r['gflops']):
        ort = f'{r["onnxruntime_ms"]:.1f}' if r.get('onnxruntime_ms') else '-'
        lines.append(f'| {r["label"]} | {r["input_size"][0]}x{r["input_size"][1]} | '
                     f'{r["gflops"]:.2f} | {r["torch_ms"]:.1f} | {ort} | {r["seen"]:.1f} | '
                     f'{r["unseen"]:.1f} |')
    (out / 'cost_curve.md').write_text('\n'.join(lines) + '\n')
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, group in zip(axes, ('seen', 'unseen')):
        for r in rows:
            marker = {'run': 'o', 'shipped': '*'}.get(r['kind'], 's')
            ax.scatter(r['gflops'], r[group], marker=marker)
            ax.annotate(r['label'], (r['gflops'], r[group]), fontsize=7,
                        xytext=(4, 3), textcoords='offset points')
        ax.set_xscale('log')
        ax.minorticks_off()
        ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50)
                 if min(r['gflops'] for r in rows) / 2 <= t <= max(r['gflops'] for r in rows) * 2]
        ax.set_xticks(ticks, [f'{t:g}' for t in ticks])
        ax.set_xlabel('query network GFLOPs (batch 1, log scale)')
        ax.set_title(f'{group} conditions')
        ax.grid(alpha=0.3)
    axes[0].set_ylabel('R@1 (%) on the held-out towns')
    fig.tight_layout()
    fig.savefig(out / 'cost_curve.png', dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--run', required=True, help='a faithful-protocol run folder')
    p.add_argument('--out', default='', help='output folder (default: RUN)')
    p.add_argument('--symmetric', default='efficientnet_lite0_vpr',
                   help='comma list of packaged models evaluated symmetric (default: %(default)s)')
    p.add_argument('--sizes', default='96x128,168x224',
                   help='HxW input sizes of the symmetric models (default: %(default)s)')
    p.add_argument('--shipped', default='',
                   help='comma list of packaged query networks searched against the gallery\'s '
                        'map (default: none)')
    p.add_argument('--runs', type=int, default=20, help='latency rounds (default: %(default)s)')
    a = p.parse_args(argv)
    run = Path(a.run)
    sizes = [tuple(int(v) for v in s.split('x')) for s in a.sizes.split(',') if s]
    rows = measure(run, [s for s in a.symmetric.split(',') if s], sizes, a.runs,
                   [s for s in a.shipped.split(',') if s])
    write(rows, Path(a.out or a.run), run)
    print((Path(a.out or a.run) / 'cost_curve.md').read_text())
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
