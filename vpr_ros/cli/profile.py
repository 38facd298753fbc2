"""``vpr-ros profile``: parameters and MACs of every registered model (vpr_ros.models.profile)."""
from __future__ import annotations

import json

from vpr_ros.models.profile import d2vpr_rows, markdown, offset_saving, profile_model
from vpr_ros.models.registry import list_models


def add_arguments(parser) -> None:
    """Options of ``vpr-ros profile``."""
    parser.add_argument('--models', nargs='*', default=None,
                        help='registered model names (default: all)')
    parser.add_argument('--size', type=int, default=0,
                        help='square input side (default: each model\'s own input size)')
    parser.add_argument('--json', default='', help='also write the rows to this JSON file')
    parser.add_argument('--no-d2vpr', action='store_true',
                        help='skip the D2-VPR vs CricaVPR cost table')


def run(args) -> int:
    """Print the tables (and write them as JSON with --json)."""
    names = args.models or list_models()
    rows = [profile_model(n, args.size or None) for n in names]
    print(markdown(rows))
    out = {'models': rows}
    if not args.no_d2vpr and ({'d2vpr_vits14', 'cricavpr_vitb14'} & set(names)
                              or not args.models):
        d2 = d2vpr_rows(args.size or None)
        print('\nD2-VPR vs CricaVPR (MACs = FLOPs/2, as the paper reports):\n')
        print(markdown(d2, d2=True))
        print('\n' + offset_saving(d2))
        out['d2vpr'] = d2
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=1)
    return 0
