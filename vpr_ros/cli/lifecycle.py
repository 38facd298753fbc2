"""``vpr-ros lifecycle up NODE...``: configure and activate managed nodes, in order.

Like nav2_lifecycle_manager's autostart, where Nav2 is not installed (vpr_ros.graph.lifecycle).
"""
from __future__ import annotations


def add_arguments(parser) -> None:
    """Options of ``vpr-ros lifecycle``."""
    parser.add_argument('action', choices=['up'], help='up: configure, then activate')
    parser.add_argument('nodes', nargs='+', help="managed node names, e.g. robot1/matcher")
    parser.add_argument('--timeout', type=float, default=300.0, metavar='S',
                        help='per transition, waiting for the node to appear included')


def run(args) -> int:
    """Bring the nodes up; 1 if one failed."""
    from vpr_ros.graph.lifecycle import bring_up  # rclpy only here
    try:
        bring_up(args.nodes, timeout=args.timeout)
    except (RuntimeError, TimeoutError) as exc:
        print(f'[lifecycle] {exc}', flush=True)
        return 1
    print(f'[lifecycle] active: {", ".join(args.nodes)}', flush=True)
    return 0
