"""From an EvalRun to report.json, report.md, frames.csv and the plots."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from vpr_ros.config import MatcherConfig
from vpr_ros.evaluation import EvalConfig, EvalRun, FrameResult
from vpr_ros.evaluation import coverage, metrics as mx
from vpr_ros.evaluation.calibrate import published_ece

RECALL_NS = (1, 5, 10)


def _candidates(frames: List[FrameResult], k: int):
    """(Q, k, 2) positions and (Q, k) yaws, NaN where a frame has fewer candidates."""
    xy = np.full((len(frames), k, 2), np.nan)
    yaw = np.full((len(frames), k), np.nan)
    for i, f in enumerate(frames):
        n = min(k, len(f.cand_xy))
        xy[i, :n], yaw[i, :n] = f.cand_xy[:n], f.cand_yaw[:n]
    return xy, yaw


def judge(frames: List[FrameResult], threshold_m: float,
          yaw_threshold_deg: Optional[float] = None) -> np.ndarray:
    """(Q, K) correctness of the candidates of the frames that have ground truth."""
    k = max([RECALL_NS[-1]] + [len(f.ids) for f in frames])
    xy, yaw = _candidates(frames, k)
    gt = np.array([f.gt for f in frames], np.float64).reshape(-1, 2)
    gyaw = np.array([np.nan if f.gt_yaw is None else f.gt_yaw for f in frames], np.float64)
    return mx.correct_matrix(gt, xy, threshold_m, gyaw, yaw, yaw_threshold_deg)


def _pose_errors(frames: List[FrameResult]) -> Dict:
    pos = [math.hypot(f.prior[0] - f.gt[0], f.prior[1] - f.gt[1]) for f in frames]
    yaw = [math.degrees(float(mx.angle_diff(f.prior[2], f.gt_yaw))) for f in frames
           if f.gt_yaw is not None]
    return {'count': len(frames), 'position_m': mx.percentiles(pos),
            'yaw_deg': mx.percentiles(yaw)}


def latency_summary(frames: List[FrameResult]) -> Dict[str, Dict]:
    """{stage: {p50, p95, p99, mean, count}} over the frames that timed that stage."""
    out = {}
    for stage in dict.fromkeys(s for f in frames for s in f.latency_ms):
        v = np.array([f.latency_ms[stage] for f in frames if stage in f.latency_ms])
        out[stage] = {**mx.percentiles(v, (50, 95, 99)), 'mean': float(v.mean()),
                      'count': int(v.size)}
    return out


def build_report(run: EvalRun, cfg: EvalConfig, matcher: MatcherConfig,
                 map_xy: Optional[np.ndarray] = None) -> Dict:
    """All metrics of ``run`` as a JSON-able dict (see the module docs for the keys); with
    ``map_xy`` (the map's place positions) also where the ground truth lies against the map.
    ``problems`` lists why the recall would not measure the model (also in ``warnings``)."""
    gt_frames = [f for f in run.frames if f.gt is not None]
    correct = judge(gt_frames, cfg.threshold_m, cfg.yaw_threshold_deg)
    top1 = correct[:, 0] if len(gt_frames) else np.zeros(0, bool)
    answered = [i for i, f in enumerate(gt_frames) if f.answered]
    conf = np.array([gt_frames[i].confidence for i in answered])
    ok = top1[answered] if answered else np.zeros(0, bool)
    p, r, t = mx.precision_recall(conf, ok)
    n_answered = sum(f.answered for f in run.frames)
    fps = n_answered / run.wall_s if run.wall_s > 0 else None
    src = {'bag': cfg.bag} if cfg.bag else {'vg': cfg.vg}
    for key in ('image_topic', 'pose_topic', 'bag_topics', 'bag_warnings', 'missing_poses',
                'num_listed', 'vg_origin', 'query_encoder_stats', 'camera_extrinsics'):
        if key in run.info:
            src[key] = run.info[key]
    rep = {
        'mode': run.mode,
        'num_frames': len(run.frames),
        'num_queries': len(gt_frames),
        'frames_without_ground_truth': len(run.frames) - len(gt_frames),
        'frames_dropped': len(run.frames) - n_answered,
        'threshold_m': cfg.threshold_m,
        'yaw_threshold_deg': cfg.yaw_threshold_deg,
        'recall_at': mx.recall_at(correct, RECALL_NS),
        'pose_error': {
            'published': _pose_errors([f for f in gt_frames if f.localized and f.prior]),
            'all_answered': _pose_errors([f for f in gt_frames if f.prior])},
        'confidence': {
            'average_precision': mx.average_precision(conf, ok),
            'pr_auc': mx.pr_auc(conf, ok),
            'at_min_confidence': mx.operating_point(conf, ok, matcher.min_confidence),
            'calibration': published_ece(gt_frames, cfg.threshold_m),
            'curve': {'precision': p.tolist(), 'recall': r.tolist(), 'threshold': t.tolist()}},
        'latency_ms': latency_summary(run.frames),
        'throughput': {'frames_per_s': fps, 'wall_s': run.wall_s},
        'model': {k: run.info.get(k) for k in ('model', 'dim', 'backend', 'input_size')},
        'map': {'path': cfg.map, 'encoder': run.info.get('map_encoder'),
                'places': run.info.get('map_places'), 'version': run.info.get('map_version')},
        'input': src,
        'matcher': dataclasses.asdict(matcher),
        'temporal_filter': run.info.get('temporal_filter'),
        'warnings': list(run.warnings),
    }
    if 'calibration_fit' in run.info:  # evaluate --fit-calibration
        rep['calibration_fit'] = run.info['calibration_fit']
    rep.update(coverage.section(gt_frames, cfg, run.info, map_xy, correct))
    rep['problems'] = coverage.problems(rep, run.info)
    rep['warnings'] = rep['problems'] + [w for w in rep['warnings'] if w not in rep['problems']]
    return rep


def _fmt(v, digits=3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return '-'
    return f'{v:.{digits}f}' if isinstance(v, float) else str(v)


def _extrinsics_line(ex) -> list:
    if not ex:
        return []
    x, y, yaw = ex['mount']
    return [f'- camera -> base_link applied to the priors: x={x:.3f} m, y={y:.3f} m, '
            f'yaw={yaw:.4f} rad, {ex["source"]}' + (f' ({ex["note"]})' if ex.get('note') else '')]


def _fit_lines(fit: Optional[Dict]) -> list:
    from vpr_ros.evaluation.calibrate import fit_summary
    return ['', *[f'- {line}' for line in fit_summary(fit)]] if fit else []


def format_markdown(rep: Dict) -> str:
    """A readable summary of a report dict."""
    src = rep['input'].get('bag') or rep['input'].get('vg')
    lines = [f'# vpr-ros evaluate ({rep["mode"]})', '',
             *[f'**Problem: {x}**\n' for x in rep.get('problems', ())],
             f'- model: {rep["model"]["model"]} ({rep["model"]["backend"]}, input '
             f'{rep["model"]["input_size"]}); map: {rep["map"]["path"]} '
             f'({rep["map"]["places"]} places, {rep["map"]["encoder"]})',
             f'- input: {src}; {rep["num_frames"]} frames, {rep["num_queries"]} with ground '
             f'truth, {rep["frames_dropped"]} dropped',
             f'- correct: within {rep["threshold_m"]} m'
             + (f' and {rep["yaw_threshold_deg"]} deg' if rep['yaw_threshold_deg'] else ''),
             *_extrinsics_line(rep['input'].get('camera_extrinsics')),
             '', '| | R@1 | R@5 | R@10 | queries |', '|---|---|---|---|---|']
    rows = [('all', rep['recall_at'], rep['num_queries'])]
    rows += [(c, v['recall_at'], v['num_queries'])
             for c, v in rep['recall_at_by_condition'].items()]
    for name, rec, n in rows:
        lines.append(f'| {name} | {rec["1"]:.3f} | {rec["5"]:.3f} | {rec["10"]:.3f} | {n} |')
    lines += [''] + coverage.markdown(rep)
    lines += ['', '| pose prior error | count | p50 | p90 | p99 |', '|---|---|---|---|---|']
    for which, e in rep['pose_error'].items():
        for q, unit in (('position_m', 'm'), ('yaw_deg', 'deg')):
            v = e[q]
            lines.append(f'| {which} ({unit}) | {e["count"]} | {_fmt(v["p50"], 2)} | '
                         f'{_fmt(v["p90"], 2)} | {_fmt(v["p99"], 2)} |')
    c, op = rep['confidence'], rep['confidence']['at_min_confidence']
    lines += ['', f'Confidence vs correct top-1: AP {_fmt(c["average_precision"])}, PR-AUC '
              f'{_fmt(c["pr_auc"])}; at min_confidence {op["threshold"]}: precision '
              f'{_fmt(op["precision"])}, recall {_fmt(op["recall"])}, accepted '
              f'{_fmt(op["accepted_fraction"])}', '',
              f'Confidence calibration: ECE {_fmt(c["calibration"]["ece"], 6)} over '
              f'{c["calibration"]["frames"]} recognised frames (correct: the pose prior within '
              f'{rep["threshold_m"]} m)', *_fit_lines(rep.get('calibration_fit')), '',
              '| latency (ms) | p50 | p95 | p99 | mean |', '|---|---|---|---|---|']
    for stage, v in rep['latency_ms'].items():
        lines.append(f'| {stage} | {_fmt(v["p50"], 1)} | {_fmt(v["p95"], 1)} | '
                     f'{_fmt(v["p99"], 1)} | {_fmt(v["mean"], 1)} |')
    lines += ['', f'Throughput: {_fmt(rep["throughput"]["frames_per_s"], 2)} frames/s']
    if rep['warnings']:
        lines += ['', f'## Warnings ({len(rep["warnings"])})', '']
        lines += [f'- {w}' for w in rep['warnings'][:50]]
    return '\n'.join(lines) + '\n'


def write_frames_csv(path: Path, run: EvalRun, correct_top1: Dict[int, bool]) -> None:
    with open(path, 'w') as f:
        f.write('index,stamp,name,condition,gt_x,gt_y,top1_id,top1_x,top1_y,top1_score,'
                'confidence,localized,answered,correct_top1\n')
        for fr in run.frames:
            gx, gy = fr.gt if fr.gt else ('', '')
            tid, tx, ty, ts = ((int(fr.ids[0]), *fr.cand_xy[0], float(fr.scores[0]))
                               if len(fr.ids) else ('', '', '', ''))
            f.write(f'{fr.index},{fr.stamp:.6f},{fr.name},{fr.condition},{gx},{gy},{tid},{tx},'
                    f'{ty},{ts},{fr.confidence},{int(fr.localized)},{int(fr.answered)},'
                    f'{correct_top1.get(fr.index, "")}\n')


def _json_safe(v):
    """NaN/inf -> None and numpy scalars -> Python, so report.json is strict JSON."""
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if isinstance(v, (np.integer, np.bool_)):
        return v.item()
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    return v


def write_report(run: EvalRun, cfg: EvalConfig, matcher: MatcherConfig,
                 map_xy: Optional[np.ndarray] = None) -> Dict:
    """Write report.json, report.md, frames.csv (and PNG plots) into ``cfg.out``."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    rep = build_report(run, cfg, matcher, map_xy)
    gt_frames = [f for f in run.frames if f.gt is not None]
    top1 = judge(gt_frames, cfg.threshold_m, cfg.yaw_threshold_deg)[:, 0] if gt_frames else []
    correct = {f.index: bool(c) for f, c in zip(gt_frames, top1)}
    write_frames_csv(out / 'frames.csv', run, correct)
    if cfg.plots:
        from vpr_ros.evaluation import plots
        rep['plots'] = plots.write_all(out, run, correct, rep, map_xy)
    (out / 'report.json').write_text(json.dumps(_json_safe(rep), indent=1))
    (out / 'report.md').write_text(format_markdown(rep))
    return rep
