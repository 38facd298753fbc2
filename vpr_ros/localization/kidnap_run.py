"""Run the kidnapped-robot evaluation on a real map and bag (``vpr-ros kidnap-eval``).

Every bag frame is encoded with the query model and searched in the map by the matcher's own
Localizer (hubness correction included; cached in ``<out>/retrieval.npz``), and both methods
run the matcher's tracker with its settings (calibration included), from ``--params-file``.
Ground truth in the map frame comes from the bag's NavSatFix topic through the map's UTM
origin (or from a pose topic already in the map frame). Odometry is the robot-frame
difference of consecutive ``/odom`` poses, as wheel odometry would see it: a step
longer than ``carried_factor`` times the median step (the kidnap: the robot is carried) reads
as no motion, and seeded noise proportional to the distance is added.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from vpr_ros.localization.kidnap_eval import (EvalFrame, evaluate_sequence, markdown_table,
                                              plot_errors)
from vpr_ros.localization.calibration import write_reliability_png
from vpr_ros.localization.place_filter import FilterConfig
from vpr_ros.config import MatcherConfig


def wheel_odometry(poses: np.ndarray, noise_frac: float = 0.05, yaw_noise_per_m: float = 0.01,
                   carried_factor: float = 5.0, seed: int = 0) -> List[Optional[tuple]]:
    """Robot-frame (dx, dy, dyaw) between consecutive (x, y, yaw) rows; None for the first.

    Noise std: ``noise_frac`` * step on dx and dy, ``yaw_noise_per_m`` * step on dyaw."""
    rng = np.random.default_rng(seed)
    d = np.diff(poses[:, :2], axis=0)
    steps = np.linalg.norm(d, axis=1)
    carried = steps > carried_factor * max(float(np.median(steps)) if steps.size else 0, 1e-6)
    out: List[Optional[tuple]] = [None]
    for i in range(len(d)):
        if carried[i]:
            out.append((0.0, 0.0, 0.0))
            continue
        c, s = math.cos(poses[i, 2]), math.sin(poses[i, 2])
        dx, dy = c * d[i, 0] + s * d[i, 1], -s * d[i, 0] + c * d[i, 1]
        dyaw = (poses[i + 1, 2] - poses[i, 2] + math.pi) % (2 * math.pi) - math.pi
        n = rng.normal(0.0, 1.0, 3) * steps[i]
        out.append((dx + noise_frac * n[0], dy + noise_frac * n[1],
                    dyaw + yaw_noise_per_m * n[2]))
    return out


def extract_retrieval(map_path, bag_path, model: str, input_size: Optional[Sequence[int]],
                      top_k: int = 10, gt_topic: str = '/gps/fix', odom_topic: str = '/odom',
                      checkpoint: str = '', matcher: Optional[MatcherConfig] = None) -> dict:
    """Arrays of the bag replayed through encoder + map: stamps, gt (N,2), odom poses (N,3),
    scores (N,k), ids (N,k), positions (N,k,3), yaws (N,k)."""
    from vpr_ros.geo import MapOrigin
    from vpr_ros.io.bags import BagReader
    from vpr_ros.localization.localizer import Localizer
    from vpr_ros.models.runtime import load_encoder
    localizer = Localizer(dataclasses.replace(matcher or MatcherConfig(), top_k=top_k))
    store = localizer.open(str(map_path)).store
    o = store.origin
    origin = MapOrigin(o['easting'], o['northing'], o['zone_number'], o['zone_letter']) \
        if o else None
    enc = load_encoder(model=model, checkpoint=checkpoint,
                       input_size=tuple(input_size) if input_size else None)
    odom_track = BagReader(bag_path, pose_topic=odom_topic).pose_track()
    stamps, gt, odom, scores, ids = [], [], [], [], []
    with BagReader(bag_path, pose_topic=gt_topic, origin=origin) as reader:
        for fr in reader.frames():
            op = odom_track.at(fr.stamp, reader.tolerance_s)
            if fr.pose is None or op is None:
                continue
            m = localizer.search(enc.encode(fr.rgb)[0], fr.stamp, top_k)
            m = localizer.verify(m, localizer.query_features(fr.rgb))  # as the matcher does
            pad = top_k - m.ids.size
            stamps.append(fr.stamp)
            gt.append((fr.pose.x, fr.pose.y))
            odom.append((op.x, op.y, op.yaw))
            scores.append(np.pad(m.scores, (0, pad), constant_values=-np.inf))
            ids.append(np.pad(m.ids, (0, pad), constant_values=-1))
    ids = np.array(ids).reshape(-1, top_k)
    safe = np.where(ids >= 0, ids, 0)
    localizer.close()
    return {'num_places': np.array(store.num_places), 'stamps': np.array(stamps),
            'gt': np.array(gt), 'odom_poses': np.array(odom),
            'scores': np.array(scores), 'ids': ids,
            'positions': store.positions(safe.ravel()).reshape(*ids.shape, 3),
            'yaws': store.yaws(safe.ravel()).reshape(ids.shape)}


def frames_from_arrays(a: dict, odom_noise: float = 0.05, seed: int = 0) -> List[EvalFrame]:
    """EvalFrames from ``extract_retrieval`` arrays (padding candidates with id -1 dropped)."""
    odom = wheel_odometry(a['odom_poses'], odom_noise, seed=seed)
    frames = []
    for n in range(len(a['stamps'])):
        v = a['ids'][n] >= 0
        frames.append(EvalFrame(float(a['stamps'][n]), a['gt'][n], a['scores'][n][v],
                                a['positions'][n][v], a['yaws'][n][v], odom[n]))
    return frames


def run_kidnap_eval(map_path, bag_path, model: str, input_size, out_dir,
                    cfg: Optional[FilterConfig] = None, top_k: int = 10,
                    odom_noise: float = 0.05, reuse: bool = True,
                    matcher: Optional[MatcherConfig] = None) -> dict:
    """Evaluate on ``bag_path`` against ``map_path``; writes kidnap_eval.{json,md,png}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / 'retrieval.npz'
    if reuse and cache.exists():
        arrays = dict(np.load(cache))
    else:
        arrays = extract_retrieval(map_path, bag_path, model, input_size, top_k,
                                   matcher=matcher)
        np.savez(cache, **arrays)
    frames = frames_from_arrays(arrays, odom_noise)
    res = evaluate_sequence(frames, cfg, matcher, num_places=int(arrays['num_places']),
                            with_runs=True)
    runs = res.pop('runs')
    res.update({'map': str(map_path), 'bag': str(bag_path), 'model': model,
                'input_size': list(input_size) if input_size else None, 'top_k': top_k,
                'odom_noise_frac': odom_noise,
                'retrieval_recall_at_1': float(np.mean(np.linalg.norm(
                    arrays['positions'][:, 0, :2] - arrays['gt'], axis=1) <= res['correct_m']))})
    (out / 'kidnap_eval.json').write_text(json.dumps(res, indent=1) + '\n')
    md = (f'# Kidnapped-robot evaluation\n\nmap `{map_path}`, bag `{bag_path}`, model `{model}`,'
          f' {len(frames)} frames, jump at frame {res["jump_index"]} '
          f'({res["jump_stamp_s"]} s), single-frame Recall@1 within {res["correct_m"]:.0f} m '
          f'{res["retrieval_recall_at_1"]:.3f}\n\n' + markdown_table(res))
    (out / 'kidnap_eval.md').write_text(md)
    plot_errors({**res, 'runs': runs}, [f.stamp for f in frames], out / 'kidnap_eval.png')
    write_reliability_png(out / 'reliability.png', {
        name: (r['confidence'], r['error'] <= res['correct_m']) for name, r in runs.items()},
        title='Reliability (correct = within 25 m)')
    return res
