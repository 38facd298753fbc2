"""Spin a node until Ctrl-C or shutdown, on Humble through Kilted alike."""
from __future__ import annotations

import sys

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor


def run_node(node_cls, args=None) -> None:
    """Create ``node_cls`` and spin it on a multi-threaded executor; exit 1 if it cannot start."""
    rclpy.init(args=args)
    node = None
    try:
        try:
            node = node_cls()
        except Exception as exc:  # a node that cannot start says why and exits non-zero
            print(f'[FATAL] {node_cls.__name__} could not start: {exc}', file=sys.stderr)
            raise SystemExit(1)
        executor = MultiThreadedExecutor(num_threads=2)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
