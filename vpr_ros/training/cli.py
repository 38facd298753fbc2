"""``vpr-ros train {asym,distill}``: dispatches to the method's own CLI module."""
from __future__ import annotations

import importlib

METHODS = {
    'asym': 'vpr_ros.training.asym_cli',
    'distill': 'vpr_ros.training.distill_cli',
    'gallery': 'vpr_ros.training.gallery_cli',
}


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest='method', required=True)
    for name, module in METHODS.items():
        mod = importlib.import_module(module)
        mod.add_arguments(sub.add_parser(name, help=(mod.__doc__ or '').strip().split('\n')[0]))


def run(args) -> int:
    return importlib.import_module(METHODS[args.method]).run(args)
