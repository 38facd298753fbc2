"""Train an asymmetric query network (AsymVPR) against a frozen gallery model, with baselines.

``vpr-ros train asym --gallery-model G --query-model Q --data PATH --out DIR [--eval VG]``
trains ours (and, per --baselines, the symmetric student and CSD), evaluates them on a held-out
split and writes report.json / report.md / PNG plots into --out. ``--preset quick`` renders a
small training town and a held-out town (different seeds) when --data / --eval are not given.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from vpr_ros.cli.dataclass_args import add_dataclass_arguments, dataclass_from_args
from vpr_ros.training.asym import AsymTrainConfig

PRESETS = {
    # The end-to-end comparison in minutes on 2 CPU cores (see README / the report).
    'quick': dict(epochs=5, bank_fractions='0.5', latency_runs=20,
                  world_places=100, heldout_places=60),
    'full': dict(epochs=10, bank_fractions='0.25,0.5', latency_runs=50,
                 world_places=220, heldout_places=150),
}
WORLD_SEEDS = (101, 202)  # training town, held-out town: different seeds, disjoint places


def add_arguments(parser) -> None:
    """Options of ``vpr-ros train asym`` (generated from AsymTrainConfig)."""
    add_dataclass_arguments(parser, AsymTrainConfig, presets=PRESETS)


def config_from_args(args) -> tuple:
    """(AsymTrainConfig, preset dict): dataclass defaults <- preset <- explicit flags."""
    preset = dict(PRESETS.get(getattr(args, 'preset', '') or '', {}))
    cfg = dataclass_from_args(AsymTrainConfig, args, PRESETS)
    square = {k: (v[0], v[0]) for k in ('input_size', 'gallery_input_size', 'd2vpr_input_size')
              for v in [getattr(cfg, k)] if len(v) == 1}
    return dataclasses.replace(cfg, **square), preset


def generate_towns(out: Path, train_places: int, heldout_places: int, progress: bool = True):
    """A training town (GSV layout, 4 conditions) and a held-out town (VG layout) from other
    seeds; the held-out database is day, its queries day/dusk/night/rain from shifted views."""
    from vpr_ros.world.generate import WorldConfig, generate_world
    train, held = out / f'train_s{WORLD_SEEDS[0]}', out / f'heldout_s{WORLD_SEEDS[1]}'
    if not (train / 'Dataframes').is_dir():
        generate_world(WorldConfig(seed=WORLD_SEEDS[0], out=str(train), places=train_places,
                                   formats=('gsv',), city='TrainTown', progress=progress))
    if not (held / 'test' / 'queries').is_dir():
        generate_world(WorldConfig(seed=WORLD_SEEDS[1], out=str(held), places=heldout_places,
                                   formats=('vg',), progress=progress,
                                   conditions=('day', 'day', 'dusk', 'night', 'rain')))
    return train, held / 'test'


def run(args) -> int:
    """Entry point of ``vpr-ros train asym``."""
    cfg, preset = config_from_args(args)
    if preset and (not cfg.data or not cfg.eval):
        train, held = generate_towns(Path(cfg.out) / 'worlds', preset['world_places'],
                                     preset['heldout_places'], cfg.progress)
        cfg = dataclasses.replace(cfg, data=cfg.data or str(train), eval=cfg.eval or str(held))
    if not cfg.data:
        raise SystemExit('vpr-ros train asym: --data is required (or --preset quick)')
    from vpr_ros.experiments.asym.comparison import run_comparison
    report = run_comparison(cfg)
    print(f'report written to {Path(cfg.out) / "report.md"}')
    ours = report.get('recall', {}).get('ours_asym', {}).get('all')
    if ours:
        print(f'ours (asymmetric) R@1 on the held-out split: {ours["R@1"]:.1f}%')
    return 0
