"""Recall@N of asymmetric and symmetric retrieval on a held-out split, overall and per condition.

A query counts as correct at N when one of its N nearest database descriptors lies within
``radius_m`` of the query position (the VG benchmark rule, 25 m by default).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import torch

NS = (1, 5, 10)


@dataclasses.dataclass
class Split:
    """A held-out split: database and query images with positions and conditions."""

    db_paths: List[str]
    db_xy: np.ndarray
    q_paths: List[str]
    q_xy: np.ndarray
    q_conditions: List[str]


def recall_hits(q_desc: np.ndarray, db_desc: np.ndarray, q_xy: np.ndarray, db_xy: np.ndarray,
                radius_m: float = 25.0, ns: Sequence[int] = NS) -> np.ndarray:
    """(Q, len(ns)) bool: query i has a true match among its top ns[j] database results."""
    from vpr_ros.evaluation.metrics import search_correct
    ok = search_correct(q_desc, db_desc, q_xy, db_xy, radius_m, max(ns))
    return np.stack([ok[:, :n].any(axis=1) for n in ns], axis=1)


def summarize(hits: np.ndarray, conditions: Sequence[str],
              ns: Sequence[int] = NS) -> Dict[str, Dict[str, float]]:
    """{'all': {'R@1': %, ...}, '<condition>': {...}} in percent."""
    conds = np.asarray(list(conditions)) if len(conditions) else np.array([''] * len(hits))
    out = {}
    for name in ['all'] + sorted(set(conds.tolist()) - {''}):
        m = np.ones(len(hits), bool) if name == 'all' else conds == name
        out[name] = {f'R@{n}': float(100.0 * hits[m, j].mean()) for j, n in enumerate(ns)}
        out[name]['num_queries'] = int(m.sum())
    return out


@torch.inference_mode()
def encode_paths(model, paths: Sequence[str], input_size=None, batch_size: int = 32,
                 progress: bool = False) -> np.ndarray:
    """Descriptors of image files (uncached); the gallery side goes through gallery_cache."""
    from vpr_ros.training.gallery_cache import extract_features
    return extract_features(model, paths, batch_size, input_size or model.input_size, progress)


def read_split(folder) -> Split:
    """A VG-layout folder with ``database/`` and ``queries/`` (condition = the note field)."""
    from vpr_ros.training.places import read_rows
    db = read_rows(Path(folder) / 'database')
    q = read_rows(Path(folder) / 'queries')
    return Split(db.paths, db.xy, q.paths, q.xy, q.conditions)


def evaluate_systems(systems: Dict[str, Dict], split: Split, radius_m: float = 25.0,
                     ns: Sequence[int] = NS) -> Dict[str, Dict]:
    """Recall of each system {'name': {'query': (N,D) descs, 'db': (M,D) descs}}."""
    return evaluate_splits([systems], [split], radius_m, ns)


def evaluate_splits(systems_by_split: Sequence[Dict[str, Dict]], splits: Sequence[Split],
                    radius_m: float = 25.0, ns: Sequence[int] = NS) -> Dict[str, Dict]:
    """Recall pooled over several held-out splits (towns): each query is searched against its
    own split's database, and every query counts once, whatever its split's size."""
    conds = [c for sp in splits for c in sp.q_conditions]
    return {name: summarize(np.concatenate(h), conds, ns)
            for name, h in split_hits(systems_by_split, splits, radius_m, ns).items()}


def split_hits(systems_by_split: Sequence[Dict[str, Dict]], splits: Sequence[Split],
               radius_m: float = 25.0, ns: Sequence[int] = NS) -> Dict[str, List[np.ndarray]]:
    """{system: [recall_hits of each split]}: one search per system and split, from which
    pooled and per-split recall are both summarised."""
    return {name: [recall_hits(s[name]['query'], s[name]['db'], sp.q_xy, sp.db_xy, radius_m, ns)
                   for s, sp in zip(systems_by_split, splits)]
            for name in systems_by_split[0]}


def pool_growth(per_split: Sequence[List[Dict]]) -> List[Dict]:
    """db_growth rows of several splits combined: R@1 weighted by queries; ``db_images`` is
    the database one query searches (its split's own plus the distractors), averaged."""
    rows = []
    for parts in zip(*per_split):
        q = sum(r['queries'] for r in parts)
        rows.append({'distractor_fraction': parts[0]['distractor_fraction'],
                     'db_images': int(round(sum(r['db_images'] * r['queries']
                                                for r in parts) / q)),
                     'distractors': parts[0]['distractors'], 'queries': q,
                     'R@1': sum(r['R@1'] * r['queries'] for r in parts) / q})
    return rows


def db_growth(q_desc: np.ndarray, db_desc: np.ndarray, split: Split,
              distractors: np.ndarray, fractions=(0.0, 0.1, 0.3, 1.0),
              radius_m: float = 25.0, seed: int = 0) -> List[Dict]:
    """R@1 as the gallery grows: the held-out database plus a growing random share of
    ``distractors`` (gallery descriptors of other places, e.g. the training towns).

    Distractors can never be a true match, so every query keeps its true matches and the
    numbers show only what the extra places cost.
    """
    order = np.random.default_rng(seed).permutation(len(distractors))
    rows = []
    for f in fractions:
        extra = distractors[np.sort(order[:int(round(f * len(order)))])]
        db = np.concatenate([db_desc, extra]).astype(np.float32)
        xy = np.concatenate([split.db_xy, np.full((len(extra), 2), np.inf)])
        hits = recall_hits(q_desc, db, split.q_xy, xy, radius_m, (1,))
        rows.append({'distractor_fraction': f, 'db_images': int(len(db)),
                     'distractors': int(len(extra)), 'queries': int(len(q_desc)),
                     'R@1': float(100 * hits[:, 0].mean())})
    return rows


@torch.inference_mode()
def profile_models(models: Dict[str, object], runs: int = 30, threads: int = 2,
                   warmup: int = 5) -> Dict[str, Dict]:
    """Params, FLOPs (FlopCounterMode, batch 1) and CPU latency of each model at its own input,
    eager (``latency_ms``) and traced + frozen (``torchscript_latency_ms``, the node's
    torchscript backend; left out for a model that does not trace).

    Latencies are measured side by side: rounds alternate between the models so that load
    from other processes hits all of them alike; the median over ``runs`` rounds is reported.
    """
    import time
    from torch.utils.flop_counter import FlopCounterMode
    from vpr_ros.models.runtime import frozen_trace
    torch.set_num_threads(threads)
    out, inputs, calls = {}, {}, {}
    for name, m in models.items():
        m.eval()
        inputs[name] = torch.randn(1, 3, *m.input_size)
        with FlopCounterMode(display=False) as fc:
            m(inputs[name])
        out[name] = {'model': m.name, 'input_size': list(m.input_size),
                     'params_M': sum(p.numel() for p in m.parameters()) / 1e6,
                     'gflops': fc.get_total_flops() / 1e9, 'dim': int(m.dim)}
        calls[(name, 'latency_ms')] = m
        try:
            calls[(name, 'torchscript_latency_ms')] = frozen_trace(m, m.input_size)
        except ValueError as e:
            out[name]['torchscript_error'] = str(e)
    for (name, _), fn in calls.items():
        for _ in range(warmup):
            fn(inputs[name])
    times = {k: [] for k in calls}
    for _ in range(runs):
        for (name, key), fn in calls.items():
            t0 = time.perf_counter()
            fn(inputs[name])
            times[(name, key)].append(1000 * (time.perf_counter() - t0))
    for (name, key), t in times.items():
        out[name][key] = float(np.median(t))
    return out


def onnx_latency(models: Dict[str, object], runs: int = 30, threads: int = 2,
                 errors: Dict[str, str] = None) -> Dict[str, float]:
    """Median batch-1 latency (ms) of each model exported to ONNX and run by onnxruntime,
    rounds alternating between the models as in profile_models. A model that does not export
    is left out, with its error in ``errors`` when given (else the error is raised)."""
    import time
    from vpr_ros.models.checkpoint import model_meta
    from vpr_ros.models.onnx_export import export_onnx
    from vpr_ros.models.runtime import ort_session
    sessions, feeds = {}, {}
    for name, m in models.items():
        try:
            data = export_onnx(m, model_meta(m), batch=1)
        except Exception as e:  # noqa: BLE001 - reported per model
            if errors is None:
                raise
            errors[name] = f'{type(e).__name__}: {str(e)[:300]}'
            continue
        # The sessions take turns on the same cores: one that spin-waits after its run
        # would steal the CPU from the next one and skew the side-by-side comparison.
        sessions[name] = ort_session(data, threads, spinning=False)
        feeds[name] = {'images': np.random.default_rng(0).standard_normal(
            (1, 3, *m.input_size)).astype(np.float32)}
        for _ in range(5):
            sessions[name].run(None, feeds[name])
    times = {n: [] for n in sessions}
    for _ in range(runs):
        for name in sessions:
            t0 = time.perf_counter()
            sessions[name].run(None, feeds[name])
            times[name].append(1000 * (time.perf_counter() - t0))
    return {n: float(np.median(t)) for n, t in times.items()}
