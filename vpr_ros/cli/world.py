"""``vpr-ros world``: render a synthetic geo-tagged town into VG/GSV-Cities folders and rosbags."""
from __future__ import annotations

import argparse

from vpr_ros.cli.dataclass_args import add_dataclass_arguments, dataclass_from_args, flags_given
from vpr_ros.world.conditions import CONDITIONS

HELP = {
    'seed': 'town seed (different seed = town)', 'out': 'output folder',
    'spacing_m': 'metres between places',
    'conditions': f'first = database (--bench/--difficulty: all); known: {",".join(CONDITIONS)}',
    'formats': 'vg,gsv,bag', 'size': 'WxH, e.g. 320x240', 'split': 'VG split folder name',
    'city': "GSV-Cities city name ('' = Synth<seed>)",
    'lat': 'latitude of the map origin', 'lon': 'longitude of the map origin',
    'bag_storage': 'mcap,sqlite3', 'rate_hz': 'camera rate in the bag',
    'speed_mps': 'driving speed', 'bag_raw': 'also write /camera/image_raw',
    'bag_gps': 'write /gps/fix', 'kidnap': 'the bag jumps once mid-run',
    'progress': 'progress bar (--quiet: none)',
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """One --flag per WorldConfig field, plus the benchmark/difficulty modes."""
    from vpr_ros.world.generate import WorldConfig
    add_dataclass_arguments(p, WorldConfig, help=HELP)
    p.add_argument('--quiet', dest='progress', action='store_false', default=argparse.SUPPRESS,
                   help='no progress bar (= --no-progress)')
    p.add_argument('--sample', action='store_true', help='the README demo preset (--out, --seed)')
    p.add_argument('--bench', action='store_true', help='print a render benchmark table instead')
    p.add_argument('--bench-frames', type=int, default=10)
    p.add_argument('--difficulty', action='store_true',
                   help='print thumbnail-matcher Recall@1 per condition (is the world hard?)')


def run(args: argparse.Namespace) -> int:
    """Generate (or benchmark) and print what was written."""
    from vpr_ros.world.generate import WorldConfig, generate_world, sample_world
    cfg = dataclass_from_args(WorldConfig, args)
    conds = list(cfg.conditions if 'conditions' in flags_given(args) else CONDITIONS)
    if args.bench:
        from vpr_ros.bench.render import bench_render, format_table
        rows = bench_render(cfg.seed, cfg.size, cfg.supersample, conds, args.bench_frames,
                            cfg.occluders)
        print(format_table(rows, cfg.size, cfg.supersample))
        return 0
    if args.difficulty:
        from vpr_ros.world.difficulty import thumbnail_recall
        rec = thumbnail_recall(cfg.seed, cfg.places, cfg.spacing_m, conds, cfg.size,
                               supersample=cfg.supersample)
        print(f'thumbnail matcher R@1 (25 m), database {conds[0]}, {args.places} places; '
              f'chance {rec.pop("chance"):.2f}')
        for cond, value in rec.items():
            print(f'  {cond:<10} {value:.2f}')
        return 0
    if args.sample:
        summary = sample_world(cfg.out, seed=cfg.seed or 7, progress=cfg.progress)
    else:
        summary = generate_world(cfg)
    print(f'world seed {summary.seed}: {summary.places} places, {summary.frames} frames in '
          f'{summary.elapsed_s:.1f} s, render {summary.render_ms:.1f} ms/frame')
    for key, paths in summary.paths.items():
        where = paths[0].parent if len(paths) > 1 and key.startswith(('vg', 'gsv_im')) else None
        shown = where if where is not None else ', '.join(str(p) for p in paths)
        print(f'  {key:<12} {len(paths):5d}  {shown}')
    return 0
