"""Re-evaluate the checkpoints of a `vpr-ros train asym` run on other held-out towns.

``vpr-ros evaluate-asym --run runs/asym --eval town_a/test,town_b/test [--distractors F]``
loads every query checkpoint of the run (ours, its ablations, the baselines) and the gallery
model they were trained against, and writes report.json / report.md / PNGs into ``--out``
(default ``<run>/eval``): recall pooled and per town, per condition, and, with distractors,
recall as the map grows. No training; gallery features come from the run's cache.
"""
from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

from vpr_ros.training.asym import AsymTrainConfig


@dataclasses.dataclass
class AsymEvalConfig:
    """Settings of ``vpr-ros evaluate-asym`` (each field is a --flag of the same name)."""

    run: str = 'runs/asym'                  # the --out folder of `vpr-ros train asym`
    eval: str = ''                          # held-out VG folder(s), comma-separated
    distractors: str = ''                   # map growth: '' none | train | folder(s)
    growth_fractions: str = '0,0.1,0.3,1'   # shares of the distractors added
    systems: str = ''                       # checkpoint names, e.g. ours_asym; '' = all
    out: str = ''                           # '' = <run>/eval
    cache_dir: str = ''                     # gallery feature cache; '' = the run's
    eval_radius_m: float = 25.0             # a DB image within this is a true match
    gallery_backend: str = 'auto'           # feature extraction: torch|onnxruntime|auto
    hubness_k: int = 10                     # CSLS rows (vpr_ros/hubness.py); 0 = off
    hubness_places: float = 0.1             # share of training places as its reference
    threads: int = 2
    seed: int = 0
    progress: bool = True


def report_dir(cfg: AsymEvalConfig) -> Path:
    """Where the report goes: ``--out``, or ``<run>/eval``."""
    return Path(cfg.out or Path(cfg.run) / 'eval')


def train_config(d: dict) -> AsymTrainConfig:
    """An AsymTrainConfig from a checkpoint's ``train_config`` (unknown keys dropped, JSON
    lists back to tuples), so older checkpoints still load."""
    hints = typing.get_type_hints(AsymTrainConfig)
    values = {}
    for f in dataclasses.fields(AsymTrainConfig):
        if f.name in d:
            v = d[f.name]
            values[f.name] = tuple(v) if typing.get_origin(hints[f.name]) is tuple else v
    return AsymTrainConfig(**values)


def load_run(run_dir: Path, systems: str = ''):
    """({tag: model}, AsymTrainConfig of the run) from the query checkpoints in ``run_dir``;
    refuses a folder without them and checkpoints trained against different galleries."""
    from vpr_ros.models.checkpoint import load_checkpoint
    wanted = {s.strip() for s in systems.split(',') if s.strip()}
    models, cfgs = {}, {}
    for path in sorted(run_dir.glob('*.pt')):
        if wanted and path.stem not in wanted:
            continue
        model, meta = load_checkpoint(str(path))
        extra = meta.get('extra') or {}
        if 'method' not in extra or 'train_config' not in extra:
            continue  # not a query network of `train asym`
        models[path.stem] = model.eval()
        cfgs[path.stem] = train_config(extra['train_config'])
    if not models:
        raise SystemExit(f'vpr-ros evaluate-asym: no query checkpoints of `train asym` in '
                         f'{str(run_dir)!r}' + (f' named {sorted(wanted)}' if wanted else ''))
    missing = wanted - set(models)
    if missing:
        raise SystemExit(f'vpr-ros evaluate-asym: no checkpoint {sorted(missing)} in '
                         f'{str(run_dir)!r} (found {sorted(models)})')
    galleries = {(c.gallery_model, c.gallery_checkpoint) for c in cfgs.values()}
    if len(galleries) > 1:
        raise SystemExit(f'vpr-ros evaluate-asym: the checkpoints were trained against '
                         f'different gallery models {sorted(galleries)}; use --systems')
    return models, cfgs.get('ours_asym') or next(iter(cfgs.values()))


def evaluate_run(cfg: AsymEvalConfig) -> dict:
    """Evaluate the run's checkpoints on ``cfg.eval`` and write the report; returns it."""
    import torch
    from vpr_ros.experiments.asym import inputs as asym_inputs
    from vpr_ros.experiments.asym.heldout import (
        cached_features_fn, evaluate_heldout, parse_fractions, read_distractors)
    from vpr_ros.experiments.asym.report import write_report
    from vpr_ros.training.query_init import make_query_model
    torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.run)
    fractions = parse_fractions(cfg.growth_fractions)
    trained, tcfg = load_run(run_dir, cfg.systems)
    tcfg = dataclasses.replace(tcfg, gallery_backend=cfg.gallery_backend, threads=cfg.threads,
                               progress=cfg.progress)
    cache = cfg.cache_dir or tcfg.cache_dir or str(run_dir / 'cache')
    gallery = asym_inputs.load_gallery_model(tcfg)
    hub, distractors = None, None
    if cfg.distractors.strip() == 'train' or cfg.hubness_k > 0:
        if not tcfg.data.strip():
            raise SystemExit("vpr-ros evaluate-asym: --distractors train and the hubness rows "
                             "need the run's training images, but its checkpoints name no "
                             'training data (use other --distractors and --hubness-k 0)')
        # per-dataset cache entries, as the run wrote them
        rows, train_feats, _ = asym_inputs.training_rows(tcfg, gallery, cache)
        hub, distractors = asym_inputs.hubness_and_distractors(cfg, rows, train_feats,
                                                               cfg.distractors)
    else:
        distractors = read_distractors(cfg.distractors)
    folders = [f.strip() for f in cfg.eval.split(',') if f.strip()]
    untrained = make_query_model(tcfg, int(gallery.dim), gallery).eval()
    rep = {'config': dataclasses.asdict(tcfg), 'evaluated_run': str(run_dir),
           'evaluate_config': dataclasses.asdict(cfg)}
    old = run_dir / 'report.json'
    if old.is_file():  # the size of the training set, for the header
        prev = json.loads(old.read_text())
        rep.update({k: prev[k] for k in ('num_train_places', 'num_train_images') if k in prev})
    rep.update(evaluate_heldout(folders, cached_features_fn(gallery, cache, tcfg), trained,
                                untrained, cfg.eval_radius_m, distractors, fractions, cfg.seed,
                                hub))
    write_report(rep, report_dir(cfg))
    return rep
