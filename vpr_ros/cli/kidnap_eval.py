"""``vpr-ros kidnap-eval``: single frame vs temporal filter on a bag with a kidnap.

The evaluation itself is vpr_ros.localization.kidnap_run.run_kidnap_eval.
"""
from __future__ import annotations

import dataclasses

from vpr_ros.localization.kidnap_eval import markdown_table
from vpr_ros.localization.kidnap_run import run_kidnap_eval
from vpr_ros.localization.place_filter import FilterConfig


def add_arguments(p) -> None:
    """Options of ``vpr-ros kidnap-eval``."""
    p.add_argument('--map', required=True, help='map store directory')
    p.add_argument('--bag', required=True, help='bag with a kidnap (world --kidnap)')
    p.add_argument('--model', required=True, help='query model name')
    p.add_argument('--input-size', type=int, nargs=2, default=None, metavar=('H', 'W'))
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--top-k', type=int, default=10)
    p.add_argument('--odom-noise', type=float, default=0.05, help='odometry noise per metre')
    p.add_argument('--max-speed', type=float, default=FilterConfig.max_speed_mps,
                   help='filter.max_speed_mps (diffusion without odometry)')
    p.add_argument('--no-reuse', action='store_true', help='recompute the retrieval cache')
    p.add_argument('--params-file', default='',
                   help="the matcher's settings (calibration_file, hubness_reference, "
                        'min_confidence, filter.*; default config/localize.yaml)')


def run(args) -> int:
    """Evaluate and print the comparison table."""
    from vpr_ros import params_file
    from vpr_ros.evaluation.offline import matcher_config
    from vpr_ros.share import share_dir
    matcher = matcher_config(params_file.load(args.params_file or
                                              share_dir() / 'config' / 'localize.yaml'))
    cfg = dataclasses.replace(matcher.filter, max_speed_mps=args.max_speed)
    res = run_kidnap_eval(args.map, args.bag, args.model, args.input_size, args.out, cfg,
                          args.top_k, args.odom_noise, not args.no_reuse, matcher)
    print(markdown_table(res))
    return 0
