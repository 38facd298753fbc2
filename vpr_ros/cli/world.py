"""``vpr-ros world``: render a synthetic geo-tagged town into VG/GSV-Cities folders and rosbags."""
from __future__ import annotations

import argparse
import dataclasses

from vpr_ros.world.conditions import CONDITIONS


def _size(text: str):
    try:
        w, h = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'size must look like 320x240, got {text!r}') from None
    return w, h


def _list(text: str):
    return tuple(v.strip() for v in text.split(',') if v.strip())


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags map onto WorldConfig fields (dashes -> underscores)."""
    from vpr_ros.world.generate import WorldConfig
    d = WorldConfig()
    p.add_argument('--seed', type=int, default=d.seed, help='town seed (different seed = town)')
    p.add_argument('--out', default=d.out, help='output folder')
    p.add_argument('--places', type=int, default=d.places)
    p.add_argument('--spacing-m', type=float, default=d.spacing_m, help='metres between places')
    p.add_argument('--conditions', type=_list, default=None,
                   help=f'comma list, first = database (default {",".join(d.conditions)}; '
                        f'--bench: all); known: {",".join(CONDITIONS)}')
    p.add_argument('--formats', type=_list, default=d.formats, help='comma list of vg,gsv,bag')
    p.add_argument('--size', type=_size, default=d.size, help='WxH, e.g. 320x240')
    p.add_argument('--supersample', type=int, default=d.supersample)
    p.add_argument('--split', default=d.split, help='VG split folder name')
    p.add_argument('--city', default=d.city, help='GSV-Cities city name (default Synth<seed>)')
    p.add_argument('--images-per-place', type=int, default=d.images_per_place)
    p.add_argument('--lat', type=float, default=d.lat, help='latitude of the map origin')
    p.add_argument('--lon', type=float, default=d.lon, help='longitude of the map origin')
    p.add_argument('--no-occluders', dest='occluders', action='store_false')
    p.add_argument('--bag-storage', type=_list, default=d.bag_storage, help='mcap,sqlite3')
    p.add_argument('--bag-condition', default=d.bag_condition)
    p.add_argument('--rate-hz', type=float, default=d.rate_hz, help='camera rate in the bag')
    p.add_argument('--speed-mps', type=float, default=d.speed_mps, help='driving speed')
    p.add_argument('--bag-raw', action='store_true', help='also write /camera/image_raw')
    p.add_argument('--no-bag-gps', dest='bag_gps', action='store_false', help='no /gps/fix')
    p.add_argument('--kidnap', action='store_true', help='the bag jumps once mid-run')
    p.add_argument('--jpeg-quality', type=int, default=d.jpeg_quality)
    p.add_argument('--quiet', dest='progress', action='store_false', help='no progress bar')
    p.add_argument('--sample', action='store_true', help='the README demo preset (--out, --seed)')
    p.add_argument('--bench', action='store_true', help='print a render benchmark table instead')
    p.add_argument('--bench-frames', type=int, default=10)
    p.add_argument('--difficulty', action='store_true',
                   help='print thumbnail-matcher Recall@1 per condition (is the world hard?)')


def run(args: argparse.Namespace) -> int:
    """Generate (or benchmark) and print what was written."""
    from vpr_ros.world.generate import WorldConfig, generate_world, sample_world
    if args.bench:
        from vpr_ros.world.bench import bench_render, format_table
        conds = list(args.conditions or CONDITIONS)
        rows = bench_render(args.seed, args.size, args.supersample, conds, args.bench_frames,
                            args.occluders)
        print(format_table(rows, args.size, args.supersample))
        return 0
    if args.difficulty:
        from vpr_ros.world.difficulty import thumbnail_recall
        conds = list(args.conditions or CONDITIONS)
        rec = thumbnail_recall(args.seed, args.places, args.spacing_m, conds, args.size,
                               supersample=args.supersample)
        print(f'thumbnail matcher R@1 (25 m), database {conds[0]}, {args.places} places; '
              f'chance {rec.pop("chance"):.2f}')
        for cond, value in rec.items():
            print(f'  {cond:<10} {value:.2f}')
        return 0
    if args.sample:
        summary = sample_world(args.out, seed=args.seed or 7, progress=args.progress)
    else:
        fields = {f.name for f in dataclasses.fields(WorldConfig)}
        kwargs = {k: v for k, v in vars(args).items() if k in fields and v is not None}
        summary = generate_world(WorldConfig(**kwargs))
    print(f'world seed {summary.seed}: {summary.places} places, {summary.frames} frames in '
          f'{summary.elapsed_s:.1f} s, render {summary.render_ms:.1f} ms/frame')
    for key, paths in summary.paths.items():
        where = paths[0].parent if len(paths) > 1 and key.startswith(('vg', 'gsv_im')) else None
        shown = where if where is not None else ', '.join(str(p) for p in paths)
        print(f'  {key:<12} {len(paths):5d}  {shown}')
    return 0
