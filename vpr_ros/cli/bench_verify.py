"""``vpr-ros bench-verify``: global-only vs + geometric verification (+ metric pose) on VG query
folders, and the per-frame cost of extraction + verification for top-k 3/5/10 and two sizes."""
from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--pair MAP VG (repeatable), --max-frames, --cost-frames, --json."""
    parser.add_argument('--pair', nargs=2, action='append', metavar=('MAP', 'VG_QUERIES'),
                        required=True,
                        help='a map built with local features and a VG queries folder of the '
                             'same town (repeat for more)')
    parser.add_argument('--max-frames', type=int, default=0,
                        help='queries per pair (default: 0 = all)')
    parser.add_argument('--threshold-m', type=float, default=25.0,
                        help='R@1 radius (default: 25.0)')
    parser.add_argument('--no-metric-pose', dest='metric_pose', action='store_false',
                        help='verification only (default: the metric pose too)')
    parser.add_argument('--cost-frames', type=int, default=20,
                        help='frames of the first pair timed per cost row (default: 20; 0: '
                             'no cost table)')
    parser.add_argument('--json', action='store_true', help='print JSON instead of tables')


def run(args) -> int:
    """Print the comparison table and the cost table (one thread everywhere)."""
    import cv2
    import torch
    from vpr_ros.config import MatcherConfig
    from vpr_ros.verification.compare import compare, format_table
    from vpr_ros.verification.cost import cost_table, format_cost
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    pairs = [tuple(p) for p in args.pair]
    matcher = MatcherConfig(metric_pose=args.metric_pose)
    try:
        results = compare(pairs, matcher, args.threshold_m, args.max_frames)
        cost = cost_table(pairs[0], matcher, args.cost_frames) if args.cost_frames else []
    except (ValueError, OSError, RuntimeError) as exc:
        print(f'bench-verify: error: {exc}', file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({'pairs': pairs, 'results': results, 'cost': cost}, indent=2))
        return 0
    print(f'towns: {", ".join(v for _, v in pairs)}; R@1 within {args.threshold_m:g} m; '
          'one thread')
    print(format_table(results))
    if cost:
        print()
        print(format_cost(cost))
    return 0
