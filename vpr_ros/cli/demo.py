"""``vpr-ros demo``: sample world -> map -> localize it through the three running nodes."""
from __future__ import annotations

import dataclasses

from vpr_ros.graph.demo import DemoConfig


def add_arguments(parser) -> None:
    """One --flag per DemoConfig field."""
    for f in dataclasses.fields(DemoConfig):
        parser.add_argument('--' + f.name.replace('_', '-'), type=type(f.default),
                            default=f.default)


def run(args) -> int:
    """Run the demo (vpr_ros.graph.demo.run_demo)."""
    from vpr_ros.graph.demo import run_demo
    return run_demo(DemoConfig(**vars(args)))
