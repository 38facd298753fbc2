"""Train an asymmetric query network (AsymVPR) against a frozen gallery model, with baselines.

``vpr-ros train asym --gallery-model G --query-model Q --data PATH --out DIR [--eval VG]``
trains ours (and, per --baselines, the symmetric student and CSD), evaluates them on a held-out
split and writes report.json / report.md / PNG plots into --out. ``--preset quick`` renders a
small training town and a held-out town (different seeds) when --data / --eval are not given;
``--preset faithful`` / ``faithful-small`` run the faithful protocol of issue 35 (seen vs unseen
conditions, one comparison per seed: vpr_ros/experiments/asym/faithful.py).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from vpr_ros.cli.dataclass_args import add_dataclass_arguments, dataclass_from_args
from vpr_ros.training.asym import AsymTrainConfig

FAITHFUL = dict(gallery_model='efficientnet_lite2_vpr24', query_model='efficientnet_lite0_query',
                input_size=(96, 128), query_pretrained='auto', start_from_student=False,
                centroid_weight=0.0, gamma=15.0, gamma_schedule='constant',
                baselines='symmetric,csd,distill', ablate_gamma0=True, ablate_ramp=True,
                bank_fractions='', cost_growth='', growth_distractors='', hubness_k=0,
                query_places=50)
PRESETS = {
    # The end-to-end comparison in minutes on 2 CPU cores (see README / the report).
    'quick': dict(epochs=5, bank_fractions='0.5', latency_runs=20,
                  world_places=100, heldout_places=60),
    'full': dict(epochs=10, bank_fractions='0.25,0.5', latency_runs=50,
                 world_places=220, heldout_places=150),
    # The faithful protocol of issue 35 (vpr_ros/experiments/asym/faithful.py): query towns in
    # day/overcast/dusk only, held-out towns with dusk (seen) and fog/night/rain (unseen)
    # queries, Lite0 at 96x128 from ImageNet, every run the same epochs, three seeds.
    'faithful': dict(FAITHFUL, seeds='0,1,2', epochs=15, latency_runs=50,
                     query_seeds=tuple(range(3101, 3113)), query_images=12,
                     heldout_seeds=tuple(range(2001, 2017)), heldout_places=64),
    # The same at the size this project's 2-core machine ran (one seed, see the README).
    'faithful-small': dict(FAITHFUL, seeds='0', epochs=5, latency_runs=20,
                           query_seeds=tuple(range(3101, 3104)), query_images=6,
                           heldout_seeds=tuple(range(2001, 2005)), heldout_places=60),
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
    if 'query_seeds' in preset or cfg.seeds:
        return _run_faithful(cfg, preset)
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


def _run_faithful(cfg, preset: dict) -> int:
    """``--preset faithful[-small]`` or ``--seeds``: (with the preset) render the towns unless
    --data / --eval are given, then one comparison per seed and the seen/unseen summary."""
    from vpr_ros.experiments.asym import faithful
    if 'query_seeds' in preset and (not cfg.data or not cfg.eval):
        data, held = faithful.render_towns(
            Path(cfg.out) / 'worlds', preset['query_seeds'], preset['heldout_seeds'],
            preset['query_places'], preset['query_images'], preset['heldout_places'],
            cfg.progress)
        cfg = dataclasses.replace(cfg, data=cfg.data or data, eval=cfg.eval or held)
    if not cfg.data:
        raise SystemExit('vpr-ros train asym: --data is required (or a --preset)')
    summary = faithful.run_faithful(cfg)
    print(f'report written to {Path(cfg.out) / "faithful.md"}')
    for group, m in summary['mean_r1'].items():
        print(f'{group}: ' + ', '.join(f'{k} {v:.1f}' for k, v in m.items()))
    return 0
