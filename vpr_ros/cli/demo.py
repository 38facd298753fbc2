"""``vpr-ros demo``: sample world -> map -> localize it through the three running nodes."""
from __future__ import annotations

from vpr_ros.cli.dataclass_args import add_dataclass_arguments, dataclass_from_args
from vpr_ros.graph.demo import DemoConfig


def add_arguments(parser) -> None:
    """One --flag per DemoConfig field."""
    add_dataclass_arguments(parser, DemoConfig)


def run(args) -> int:
    """Run the demo (vpr_ros.graph.demo.run_demo)."""
    from vpr_ros.graph.demo import run_demo
    return run_demo(dataclass_from_args(DemoConfig, args))
