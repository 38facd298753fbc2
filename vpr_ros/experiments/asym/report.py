"""The AsymVPR comparison report: report.json, report.md and PNG plots (recall bars, losses)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List

import numpy as np

from vpr_ros.experiments.asym.floors import floors
from vpr_ros.experiments.asym.labels import LABELS, label  # noqa: F401 - re-exported


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def _paired_lines(paired: Dict, who: str = 'Ours') -> List[str]:
    if not paired:
        return []
    unit = next(iter(paired.values())).get('resampled', 'queries')
    return [f'{who} against each system on the same queries: R@1 difference (paired bootstrap '
            f'over {unit}), McNemar\'s exact p, and the queries only ours / only the other '
            'got right.', '', '| ours minus | points | 95% CI | p | only ours | only other |',
            '|---|---|---|---|---|---|'] + [
        f'| {label(k)} | {d["diff"]:+.1f} | {d["ci_low"]:+.1f} to {d["ci_high"]:+.1f} | '
        f'{d["p"]:.2g} | {d["only_a"]} | {d["only_b"]} |' for k, d in paired.items()] + ['']


def _growth_source(rep: Dict) -> str:
    return rep.get('db_growth_source') or 'the training images'


def _by_split_lines(by_split: dict) -> list:
    """R@1 of every system on each held-out split (when the report pools several)."""
    if not by_split:
        return []
    names = list(by_split)
    lines = ['R@1 per held-out split:', '', '| system | ' + ' | '.join(
        f'`{Path(n).parent.name or n}`' for n in names) + ' |', '|---|' + '---|' * len(names)]
    for k in by_split[names[0]]:
        lines.append(f'| {label(k)} | ' + ' | '.join(
            f'{by_split[n][k]["all"]["R@1"]:.1f}' for n in names) + ' |')
    return lines + ['']


def markdown(rep: Dict) -> str:
    """The report as markdown tables (only measured values)."""
    lines = ['# AsymVPR comparison', '']
    cfg = rep.get('config', {})
    lines += [f'gallery `{cfg.get("gallery_model")}` (frozen), query `{cfg.get("query_model")}` '
              f'at {cfg.get("input_size")}; train data `{cfg.get("data")}` '
              f'({rep.get("num_train_places")} places, {rep.get("num_train_images")} images); '
              f'{cfg.get("epochs")} epochs'
              + (f' (the student {cfg["student_epochs"]})' if cfg.get('student_epochs') else '')
              + f', batch {cfg.get("batch_size")}, tau {cfg.get("tau")}, '
              f'gamma {cfg.get("gamma")}, negatives = {cfg.get("negatives")}'
              + (f', centroid term weight {cfg["centroid_weight"]}'
                 if cfg.get('centroid_weight') else '')
              + (f', query->gallery MS term weight {cfg["cross_weight"]}'
                 if cfg.get('cross_weight') else '')
              + (f', query->query MS term weight {cfg["self_weight"]}'
                 if cfg.get('self_weight') else '')
              + (f', alignment term weight {cfg["align_weight"]}'
                 if cfg.get('align_weight') else '')
              + (f', instance-bank term weight {cfg["instance_weight"]}'
                 if cfg.get('instance_weight') else '')
              + (f', {cfg["warm_start_mode"]} least-squares warm start'
                 if cfg.get('warm_start_mode', 'forward') != 'forward' else '')
              + (f', ours trained against the gallery features PCA-whitened to '
                 f'{cfg["gallery_whiten"]} dimensions (folded back into the map\'s width)'
                 if cfg.get('gallery_whiten') else '') + '.', '']
    student = rep.get('train', {}).get('symmetric_student', {}).get('loaded_from')
    if student:
        lines += [f'The symmetric student was not trained here: it is `{student}` '
                  '(`--student-checkpoint`).', '']
    if rep.get('evaluated_run'):
        lines += [f'Re-evaluation of the checkpoints of `{rep["evaluated_run"]}` '
                  '(`vpr-ros evaluate-asym`; training cost and latency are in that run\'s '
                  'report).', '']
    rec = rep.get('recall', {})
    if rec:
        ev = rep.get('eval', {})
        conds = [c for c in next(iter(rec.values())) if c != 'all']
        many = ev.get('splits', 1) > 1
        lines += [f'Held-out split{"s" if many else ""} `{ev.get("split")}`: '
                  f'{ev.get("db_images")} DB images, {ev.get("queries")} queries'
                  + (' (pooled: each query searched against its own split\'s DB)' if many else '')
                  + f', true match within {ev.get("radius_m")} m.', '',
                  '| system | R@1 | R@5 | R@10 | ' + ' | '.join(f'R@1 {c}' for c in conds) + ' |',
                  '|---|---|---|---|' + '---|' * len(conds)]
        for k, r in rec.items():
            lines.append(f'| {label(k)} | {r["all"]["R@1"]:.1f} | {r["all"]["R@5"]:.1f} | '
                         f'{r["all"]["R@10"]:.1f} | '
                         + ' | '.join(f'{r[c]["R@1"]:.1f}' for c in conds) + ' |')
        lines.append('')
    lines += _by_split_lines(rep.get('recall_by_split', {}))
    lines += _paired_lines(rep.get('paired_r1', {}))
    if rep.get('hubness'):
        h = rep['hubness']
        lines += [f'Hubness correction (CSLS, `vpr_ros/hubness.py`): each map entry scored '
                  f'q.g - bias(g), bias(g) half the mean of its {h["k"]} largest similarities '
                  f'to the system\'s own query descriptors of {h["reference_images"]} reference '
                  'images (the training images of places kept out of the growth distractors).',
                  '']
    lines += _paired_lines(rep.get('paired_r1_csls', {}), 'Ours with the hubness correction')
    if rep.get('compatibility'):
        lines += ['Compatibility: mean cosine of each query network\'s descriptor of a held-out '
                  'query to the gallery\'s descriptor of the same image: '
                  + ', '.join(f'{label(k)} {v:.3f}' for k, v in rep['compatibility'].items())
                  + '.', '']
    tr, tm = rep.get('train', {}), rep.get('timing', {})
    if tr:
        lines += ['| training run | places in bank | bank MB | precompute s | s/iter (median) '
                  '| iters | train s | final loss |', '|---|---|---|---|---|---|---|---|']
        for k, h in tr.items():
            bank = h.get('bank') or {}
            pre = tm.get('csd_precompute_s') if h['method'] == 'csd' else bank.get('build_s')
            cells = [k, str(bank.get('places', '-')),
                     f'{bank["bytes"] / 1e6:.2f}' if bank else '-',
                     f'{pre:.4f}' if pre is not None else '-',
                     f'{h["median_iter_seconds"]:.3f}', str(h['steps']),
                     f'{h["train_seconds"]:.0f}', f'{h["epoch_loss"][-1]:.4f}']
            lines.append('| ' + ' | '.join(cells) + ' |')
        gf = rep.get('gallery_features', {})
        lines += ['', f'Gallery feature extraction (shared by ours and CSD, cached): '
                  f'{gf.get("num_images")} images in {gf.get("extract_seconds", 0):.1f} s '
                  f'(reused from cache this run: {gf.get("cached")}).', '']
        if tm.get('shared_student_start_s') is not None:
            lines += [f'Two stages: every compatible run (ours, its ablations, CSD) starts from '
                      f'the symmetric student trained first in this run '
                      f'({tm["shared_student_start_s"]:.0f} s, shared by all of them, so not in '
                      f'the precompute columns); ours on fewer places starts from a student '
                      f'trained on those places (its own row).'
                      + _ours_lr(rep.get('train', {}).get('ours_asym', {}), cfg), '']
    m = rep.get('models', {})
    if m:
        lines += ['| network | model | input | params (M) | GFLOPs | torch ms (b=1) | '
                  'torchscript ms (b=1) | onnxruntime ms (b=1) |',
                  '|---|---|---|---|---|---|---|---|']
        for k, v in m.items():
            opt = [v.get(c) for c in ('torchscript_latency_ms', 'onnxruntime_latency_ms')]
            lines.append(f'| {k} | {v["model"]} | {v["input_size"]} | {v["params_M"]:.2f} | '
                         f'{v["gflops"]:.3f} | {v["latency_ms"]:.2f} | '
                         + ' | '.join(f'{t:.2f}' if t is not None else '-' for t in opt) + ' |')
        lines.append('')
    cg = rep.get('cost_growth', [])
    if cg:
        lines += ['Training-side cost as the gallery grows (the training features tiled, '
                  'each copy new places): what each method precomputes, and the loss of one '
                  'batch (forward + backward, the network excluded).', '',
                  '| gallery images | places | bank build s | bank MB | k-NN s | k-NN anchors MB '
                  '| ours loss ms | CSD loss ms |', '|---|---|---|---|---|---|---|---|']
        lines += [f'| {r["images"]} | {r["places"]} | {r["bank_build_s"]:.3f} | '
                  f'{r["bank_MB"]:.1f} | {r["knn_s"]:.2f} | {r["knn_anchors_MB"]:.1f} | '
                  f'{r["ours_loss_ms"]:.1f} | {r["csd_loss_ms"]:.1f} |' for r in cg]
        lines.append('')
    growth = rep.get('db_growth', {})
    if growth:
        lines += [f'Map growth: each held-out DB plus {_growth_source(rep)} as distractors '
                  '(never a true match; gallery descriptors of them, the student\'s own for '
                  'the student).', '']
    for tag, rows in growth.items():
        lines.append(f'- {label(tag)}: ' + ', '.join(
            f'{r["db_images"]} DB imgs -> R@1 {r["R@1"]:.1f}' for r in rows))
    if 'onnx' in rep:
        lines += ['', f'ONNX export: `{rep["onnx"]["path"]}`, parity max abs diff vs torch '
                  f'{rep["onnx"]["parity_max_abs_diff"]:.2e}']
    fl = floors(rep)
    if fl:
        lines += ['', '| floor | measured | met |', '|---|---|---|']
        lines += [f'| {f["floor"]} | {f["measured"]} | {"yes" if f["ok"] else "NO"} |'
                  for f in fl]
    return '\n'.join(lines) + '\n'


def _lines(plt, path: Path, series: Dict, xlabel: str, ylabel: str, xlog: bool = False):
    """One line per ``series`` entry {label: (xs, ys)}, saved to ``path``."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (xs, ys) in series.items():
        ax.plot(list(xs), list(ys), marker='o', label=name)
    if xlog:
        ax.set_xscale('log')
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plots(rep: Dict, out: Path) -> List[str]:
    """recall_bars.png (R@1 per condition and system), loss_curves.png and
    gallery_growth.png (R@1 against the number of DB images)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    written = []
    rec = rep.get('recall', {})
    if rec:
        conds = list(next(iter(rec.values())).keys())
        fig, ax = plt.subplots(figsize=(10, 4))
        w = 0.8 / len(rec)
        for i, (k, r) in enumerate(rec.items()):
            ax.bar(np.arange(len(conds)) + i * w, [r[c]['R@1'] for c in conds], w, label=k)
        ax.set_xticks(np.arange(len(conds)) + 0.4 - w / 2, conds)
        ax.set_ylabel('R@1 (%)')
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / 'recall_bars.png', dpi=100)
        plt.close(fig)
        written.append('recall_bars.png')
    if rep.get('train'):
        _lines(plt, out / 'loss_curves.png', {
            k: (range(1, len(h['epoch_loss']) + 1), h['epoch_loss'])
            for k, h in rep['train'].items()}, 'epoch', 'mean training loss')
        written.append('loss_curves.png')
    if rep.get('db_growth'):
        _lines(plt, out / 'gallery_growth.png', {
            label(k): ([r['db_images'] for r in rows], [r['R@1'] for r in rows])
            for k, rows in rep['db_growth'].items()},
            f'DB images (held-out DB + {_growth_source(rep)})', 'R@1 (%)', xlog=True)
        written.append('gallery_growth.png')
    return written


def write_report(rep: Dict, out) -> None:
    """report.json, report.md and the PNGs into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rep = dict(rep, floors=floors(rep))
    rep['plots'] = plots(rep, out)
    (out / 'report.json').write_text(json.dumps(_jsonable(rep), indent=1))
    (out / 'report.md').write_text(markdown(rep))


def _ours_lr(hist: Dict, cfg: Dict) -> str:
    """The learning rate ours fine-tuned the student at, when it differs from the config's."""
    lr = hist.get('lr')
    if lr is None or lr == cfg.get('lr'):
        return ''
    return (f' Ours fine-tunes it at lr {lr:g} -> {hist.get("lr_min"):g} '
            f'({cfg.get("from_student_lr_scale")}x the student\'s {cfg.get("lr"):g}).')
