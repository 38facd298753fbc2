"""``vpr-ros train {asym,distill,gallery}``: dispatches to the method's own CLI module."""
from __future__ import annotations

import importlib

METHODS = {
    'asym': 'vpr_ros.cli.train_asym',
    'distill': 'vpr_ros.cli.train_distill',
    'gallery': 'vpr_ros.cli.train_gallery',
}


def add_arguments(parser) -> None:
    """One sub-subcommand per training method."""
    sub = parser.add_subparsers(dest='method', required=True)
    for name, module in METHODS.items():
        mod = importlib.import_module(module)
        mod.add_arguments(sub.add_parser(name, help=(mod.__doc__ or '').strip().split('\n')[0]))


def run(args) -> int:
    """Run the chosen method's CLI."""
    return importlib.import_module(METHODS[args.method]).run(args)
