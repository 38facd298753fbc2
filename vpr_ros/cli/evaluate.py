"""``vpr-ros evaluate``: Recall@N, pose-prior error, confidence PR and latency on a bag/folder.

Offline by default (the nodes' core functions in this process); ``--live`` starts the three
nodes and replays the frames over DDS; ``--bench`` does both and prints frames/s side by side.
Exit codes: 0 done, 2 unusable input (the message says why), 1 the live graph failed.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Optional

from vpr_ros.config import MatcherConfig
from vpr_ros.evaluation import EvalConfig, EvalRun
from vpr_ros.models.runtime import BACKENDS


def _optional_float(text: str) -> Optional[float]:
    return None if text.lower() in ('none', 'off', '') else float(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags map onto EvalConfig fields (dashes -> underscores)."""
    d = EvalConfig()
    p.add_argument('--map', required=True, help='map directory (vpr-ros build-map)')
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--bag', default='', help='rosbag (sqlite3/MCAP/ROS 1) with images + poses')
    src.add_argument('--vg', default='', help='VG-layout queries folder (ground truth in names)')
    p.add_argument('--model', default='', help='query model (default: the map\'s encoder)')
    p.add_argument('--checkpoint', default='', help='trained query network or .onnx')
    p.add_argument('--backend', default=d.backend, choices=BACKENDS)
    p.add_argument('--threads', type=int, default=d.threads)
    p.add_argument('--input-size', type=int, nargs=2, default=(), metavar=('H', 'W'))
    p.add_argument('--params-file', default='',
                   help='node parameter YAML whose matcher settings are used (default: the '
                        'package\'s config/localize.yaml)')
    p.add_argument('--image-topic', default='', help='default: the only image topic')
    p.add_argument('--pose-topic', default='', help='ground truth; default: automatic')
    p.add_argument('--pose-tolerance', type=float, default=d.pose_tolerance,
                   help='max s between an image and its pose')
    p.add_argument('--threshold-m', type=float, default=d.threshold_m)
    p.add_argument('--yaw-threshold-deg', type=_optional_float, default=None,
                   help='also require this heading agreement (default none)')
    p.add_argument('--max-frames', type=int, default=d.max_frames)
    p.add_argument('--out', default=d.out, help='report folder')
    p.add_argument('--live', action='store_true', help='run the nodes and replay over DDS')
    p.add_argument('--rate', type=float, default=d.rate,
                   help='live replay rate in Hz (0: the bag\'s own stamps); frames sent faster '
                        'than the encoder keeps up are dropped by it and counted')
    p.add_argument('--bench', action='store_true',
                   help='run offline and live, print frames/s side by side')
    p.add_argument('--no-plots', dest='plots', action='store_false')


def config_from_args(args) -> EvalConfig:
    names = {f.name for f in dataclasses.fields(EvalConfig)}
    cfg = EvalConfig(**{k: v for k, v in vars(args).items() if k in names})
    cfg.input_size = tuple(cfg.input_size or ())
    return cfg


def evaluate(cfg: EvalConfig, live: bool, matcher: Optional[MatcherConfig] = None):
    """Run one evaluation and write its report into ``cfg.out``; returns (run, report)."""
    from vpr_ros.evaluation.offline import (capture_warnings, load_params, matcher_config,
                                            run_offline)
    from vpr_ros.evaluation.report import write_report
    matcher = matcher or matcher_config(load_params(cfg))
    warnings = []
    with capture_warnings(warnings):
        if live:
            from vpr_ros.graph.live_eval import run_live  # rclpy only here
            run = run_live(cfg, matcher)
        else:
            run = run_offline(cfg, matcher)
    run.warnings = warnings + run.warnings
    if not any(f.gt is not None for f in run.frames):
        run.warnings.append(f'none of the {len(run.frames)} frames has a ground-truth pose '
                            f'(check --pose-topic / --pose-tolerance): recall is not measured')
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
    return (f'[{run.mode}] R@1 {r["1"]:.3f}  R@5 {r["5"]:.3f}  R@10 {r["10"]:.3f} over '
            f'{rep["num_queries"]} queries ({rep["threshold_m"]} m); dropped '
            f'{rep["frames_dropped"]}; {fps or 0:.2f} frames/s; {len(rep["warnings"])} warnings')


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
    rows = []
    try:
        for live in modes:
            mode_cfg = dataclasses.replace(cfg, out=str(Path(cfg.out) / 'live')) \
                if cfg.bench and live else cfg
            run_, rep = evaluate(mode_cfg, live)
            rows.append((run_, rep))
            print(summary_line(run_, rep))
            for w in rep['warnings'][:10]:
                print(f'  warning: {w}')
            print(f'report: {Path(mode_cfg.out) / "report.md"} (json: report.json)')
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
