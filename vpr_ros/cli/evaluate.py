"""``vpr-ros evaluate``: Recall@N, pose-prior error, confidence PR and latency on a bag/folder.

Offline by default (the nodes' core functions in this process); ``--live`` starts the three
nodes and replays the frames over DDS; ``--bench`` does both and prints frames/s side by side.
``--fit-calibration OUT.json`` also fits the matcher's confidence calibration on the frames.
Exit codes: 0 done, 2 unusable input or a refused calibration fit (the message says why), 1 the
live graph failed, 3 with ``--strict``: the report has problems (no ground truth, or ground
truth far outside the map).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Optional

from vpr_ros.cli.dataclass_args import add_dataclass_arguments, dataclass_from_args
from vpr_ros.config import MatcherConfig
from vpr_ros.evaluation import EvalConfig, EvalRun
from vpr_ros.evaluation.calibrate import MIN_FRAMES
from vpr_ros.localization.calibration import METHODS
from vpr_ros.models.runtime import BACKENDS


HELP = {
    'map': 'map directory (vpr-ros build-map)',
    'bag': 'rosbag (sqlite3/MCAP/ROS 1) with images + poses',
    'vg': 'VG-layout queries folder (ground truth in names)',
    'model': "query model ('' = the map's encoder)",
    'checkpoint': 'trained query network or .onnx', 'input_size': 'H W',
    'params_file': "node parameter YAML whose matcher settings are used ('' = the package's "
                   "config/localize.yaml)",
    'image_topic': "'' = the only image topic",
    'pose_topic': "ground truth; '' = the only pose topic, else NavSatFix for a geo-referenced "
                  "map and the local (odometry) topic for a map without geo reference; the "
                  "report states the choice",
    'pose_tolerance': 'max s between an image and its pose',
    'yaw_threshold_deg': 'also require this heading agreement (none = off)',
    'out': 'report folder', 'live': 'run the nodes and replay over DDS',
    'rate': "live replay rate in Hz (0: the bag's own stamps); frames sent faster than the "
            "encoder keeps up are dropped by it and counted",
    'bench': 'run offline and live, print frames/s side by side',
    'plots': 'write the report plots',
    'condition': "condition label of frames without one ('' = the bag's name)",
    'outside_map_m': 'report a problem when the median distance of the ground truth to the '
                     'nearest map place exceeds this (0 = off)',
    'strict': 'exit 3 when the report has problems (no ground truth, or ground truth far '
              'outside the map)',
    'fit_calibration': "after the evaluation, fit the matcher's confidence calibration on its "
                       "frames and write this JSON (for the matcher's calibration_file): raw "
                       'confidence and relative similarity of each recognised frame with ground '
                       'truth, correct = its pose prior within --threshold-m of the ground truth '
                       "(the report's pose-prior error, not R@1); a calibration_file in "
                       '--params-file is not applied while fitting; offline only; needs at '
                       f'least {MIN_FRAMES} frames, some correct and some wrong',
    'calibration_method': 'method of --fit-calibration',
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """One --flag per EvalConfig field; --map and one of --bag / --vg are required."""
    src = p.add_mutually_exclusive_group(required=True)
    add_dataclass_arguments(p, EvalConfig, help=HELP, overrides={
        'map': {'required': True}, 'bag': {'group': src}, 'vg': {'group': src},
        'backend': {'choices': BACKENDS},
        'calibration_method': {'choices': [m for m in METHODS if m != 'identity']}})


def config_from_args(args) -> EvalConfig:
    return dataclass_from_args(EvalConfig, args)


def evaluate(cfg: EvalConfig, live: bool, matcher: Optional[MatcherConfig] = None):
    """Run one evaluation and write its report into ``cfg.out``; returns (run, report)."""
    from vpr_ros.evaluation.offline import (capture_warnings, load_params, matcher_config,
                                            run_offline)
    from vpr_ros.evaluation.report import write_report
    matcher = matcher or matcher_config(load_params(cfg))
    ignored = ''
    if cfg.fit_calibration:  # fit on raw confidences: the params' calibration is not applied
        if live:
            raise ValueError('--fit-calibration needs the offline evaluation (the raw '
                             'confidence of each frame): drop --live / --bench')
        ignored, matcher = matcher.calibration_file, dataclasses.replace(matcher,
                                                                         calibration_file='')
    warnings = []
    with capture_warnings(warnings):
        if live:
            from vpr_ros.evaluation.extrinsics import with_bag_mount
            from vpr_ros.graph.live_eval import run_live  # rclpy only here
            live_matcher, extrinsics = with_bag_mount(cfg, matcher)  # as offline applies it
            run = run_live(cfg, live_matcher)
            run.info['camera_extrinsics'] = extrinsics
        else:
            run = run_offline(cfg, matcher)
    run.warnings = warnings + run.warnings
    if cfg.fit_calibration:  # refused (CalibrationFitError) before anything is written
        from vpr_ros.evaluation.calibrate import fit_frames, save
        fit = fit_frames(run.frames, cfg.threshold_m, cfg.calibration_method,
                         cfg.fit_calibration)
        fit.ignored_calibration_file = ignored
        save(fit, cfg.fit_calibration)
        run.info['calibration_fit'] = fit.section()
    rep = write_report(run, cfg, matcher, _map_positions(cfg.map))
    return run, rep


def _map_positions(path: str):
    import numpy as np
    from vpr_ros.mapstore import MapStore
    with MapStore.open(path, verify_checksums=False) as store:
        return store.positions(np.arange(store.num_places))[:, :2]


def summary_line(run: EvalRun, rep: dict) -> str:
    r = rep['recall_at']
    fps = rep['throughput']['frames_per_s']
    within = '/'.join(f'{v:.3f}' for v in rep.get('r1_within_m', {}).values())
    radii = '/'.join(rep.get('r1_within_m', {}))
    line = (f'[{run.mode}] R@1 {r["1"]:.3f}  R@5 {r["5"]:.3f}  R@10 {r["10"]:.3f} over '
            f'{rep["num_queries"]} queries ({rep["threshold_m"]} m); R@1 within {radii} m '
            f'{within}; dropped {rep["frames_dropped"]}; {fps or 0:.2f} frames/s; '
            f'{len(rep.get("problems", ()))} problems, {len(rep["warnings"])} warnings')
    gt = rep.get('ground_truth', {})
    if 'pose_topic_choice' in gt:
        line += f'\n  ground truth: {rep["input"].get("pose_topic")} ({gt["pose_topic_choice"]})'
    return line


def bench_table(rows) -> str:
    """Side-by-side frames/s of offline evaluation and live replay."""
    head = f'{"mode":<8} {"rate Hz":>7} {"frames":>6} {"answered":>8} {"wall s":>8} ' \
           f'{"frames/s":>9} {"R@1":>6} {"e2e p50 ms":>10}'
    lines = [head, '-' * len(head)]
    for run, rep in rows:
        lat = rep['latency_ms'].get('end_to_end') or rep['latency_ms'].get('total') or {}
        rate = str(run.info.get('rate_hz', '-'))
        lines.append(f'{run.mode:<8} {rate:>7} {rep["num_frames"]:>6} '
                     f'{rep["num_frames"] - rep["frames_dropped"]:>8} {run.wall_s:>8.2f} '
                     f'{rep["throughput"]["frames_per_s"] or 0:>9.2f} '
                     f'{rep["recall_at"]["1"]:>6.3f} {lat.get("p50") or 0:>10.1f}')
    lines.append('offline: frames/s of the in-process pipeline (decode..summarize); live: '
                 'matched frames/s over DDS, at most the replay rate')
    return '\n'.join(lines)


def run(args) -> int:
    cfg = config_from_args(args)
    from vpr_ros.imaging import ImageDecodeError
    from vpr_ros.io.bags import BagError
    from vpr_ros.io.vg import VGNameError
    from vpr_ros.mapstore import MapError
    from vpr_ros.query_pipeline import IncompatibleQueryNetwork
    usage_errors = (BagError, MapError, VGNameError, IncompatibleQueryNetwork, ImageDecodeError,
                    FileNotFoundError, ValueError, KeyError)
    modes = [False, True] if cfg.bench else [cfg.live]
    if cfg.fit_calibration and (cfg.live or cfg.bench):
        print('vpr-ros evaluate: error: --fit-calibration needs the offline evaluation (the raw '
              'confidence of each frame): drop --live / --bench', file=sys.stderr)
        return 2
    rows = []
    try:
        for live in modes:
            mode_cfg = dataclasses.replace(cfg, out=str(Path(cfg.out) / 'live')) \
                if cfg.bench and live else cfg
            run_, rep = evaluate(mode_cfg, live)
            rows.append((run_, rep))
            print(summary_line(run_, rep))
            for w in rep['warnings'][:10]:
                print(f'  {"problem" if w in rep["problems"] else "warning"}: {w}')
            if 'calibration_fit' in rep:
                from vpr_ros.evaluation.calibrate import fit_summary
                print('\n'.join(fit_summary(rep['calibration_fit'])))
            print(f'report: {Path(mode_cfg.out) / "report.md"} (json: report.json)')
            if cfg.strict and rep['problems']:
                print(f'vpr-ros evaluate: --strict: {len(rep["problems"])} problem(s), see '
                      f'above', file=sys.stderr)
                return 3
    except usage_errors as exc:
        print(f'vpr-ros evaluate: error: {exc}', file=sys.stderr)
        return 2
    except RuntimeError as exc:  # the live graph failed (a node died, no discovery)
        print(f'vpr-ros evaluate: error: {exc}', file=sys.stderr)
        return 1
    if cfg.bench:
        print(bench_table(rows))
        (Path(cfg.out) / 'bench.json').write_text(json.dumps([
            {'mode': r.mode, 'frames': rep['num_frames'], 'wall_s': r.wall_s,
             'frames_per_s': rep['throughput']['frames_per_s']} for r, rep in rows], indent=1))
    return 0
