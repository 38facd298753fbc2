"""``vpr-ros build-map``: build a map store from a VG folder, a CSV/JSON manifest or a bag."""
from __future__ import annotations

import argparse
import json
import logging
import sys

from vpr_ros.cli.dataclass_args import add_dataclass_arguments, dataclass_from_args
from vpr_ros.mapstore.build import build_map, BuildConfig

HELP = {
    'model': 'registered model name (gallery model), e.g. efficientnet_lite0_gem',
    'checkpoint': 'vpr_ros checkpoint, plain state dict of the model, or a release/backbone '
                  'file (create_model(model, pretrained=True, checkpoint=F))',
    'allow_random_weights': 'build even when the model has untrained (random) parts '
                            '(refused by default: such a map is meaningless)',
    'source': 'input kind: vg (database/ queries/ folders), manifest (CSV/JSON), bag, msls '
              '(raw MSLS: train_val/<city>/database), gsv-cities (Dataframes/ + Images/)',
    'input': 'folder, manifest file or bag path', 'out': 'map directory to create',
    'image_topic': "bag image topic ('' = the only image topic)",
    'pose_topic': 'bag pose topic: Odometry, PoseStamped, PoseWithCovarianceStamped, NavSatFix',
    'keyframe_dist': 'bag keyframe every N metres travelled',
    'keyframe_angle': '... or every N degrees turned',
    'pose_tolerance': 'max seconds between an image and its pose',
    'dtype': 'descriptor storage: float16 or float32',
    'index': 'auto, Flat, HNSW32, IVF256,PQ32 or another faiss factory string',
    'batch_size': 'images per forward pass',
    'workers': 'image decoding threads (local) or Ray actors, one model each (ray)',
    'robot_id': 'robot id stored with every place', 'session': 'session name for every place',
    'input_size': 'H W: resize images to this instead of the model default',
    'checkpoint_every': 'images between resumable checkpoints in <out>/work',
    'vg_subsets': 'VG subfolders (MSLS: database and/or query) to use',
    'progress': 'show a progress bar',
    'local_features': 'store each image\'s local features (RootSIFT, <= 512 per place) for the '
                      'matcher\'s geometric verification (--no-local-features: none)',
    'executor': 'local (this process) or ray (actors of a Ray cluster, see --ray-address)',
    'ray_address': 'auto (the `ray start` cluster of this machine, else a new local one), '
                   'local (a new local one) or HOST:PORT of a cluster head',
}
OVERRIDES = {'model': {'required': True}, 'input': {'required': True},
             'out': {'required': True},
             'source': {'choices': ('vg', 'manifest', 'bag', 'msls', 'gsv-cities')},
             'dtype': {'choices': ('float16', 'float32')},
             'executor': {'choices': ('local', 'ray')}}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per BuildConfig field."""
    add_dataclass_arguments(parser, BuildConfig, help=HELP, overrides=OVERRIDES)
    parser.add_argument('--json', action='store_true', help='print the summary as JSON')
    parser.add_argument('--bench', type=int, default=0, metavar='N',
                        help='instead of one map, build the first N images of --input with '
                             'local, ray x1 and ray x2 workers into --out/bench-* and print '
                             'images/s side by side')


def run(args) -> int:
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    cfg = dataclass_from_args(BuildConfig, args)
    try:
        if args.bench:
            from vpr_ros.bench.map_build import run_bench
            run_bench(cfg, args.bench)
            return 0
        summary = build_map(cfg)
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        print(f'build-map: error: {exc}', file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"built {summary['out']}: {summary['places']} places, encoder {summary['encoder']} "
              f"({summary['dim']}-d {summary['dtype']}), index {summary['index']}, "
              f"{summary['seconds']:.1f} s, {summary['images_per_s']:.1f} images/s "
              f"({summary['images_failed']} failed, {summary['images_resumed']} resumed)")
    return 0
