"""``vpr-ros run GRAPH``: start a node graph from its YAML as separate processes.

``ros2 launch vpr_ros <graph>.launch.py`` starts the same nodes from the same table
(vpr_ros.graph.launcher.GRAPHS). Ctrl-C or SIGTERM stops them all; a node that dies stops the
graph, or is restarted with ``--respawn`` (launch: ``use_respawn:=true``).
"""
from __future__ import annotations

import signal
import sys
import time

from vpr_ros.graph.launcher import GRAPHS, graph_commands, NodeGroup, normalize_namespace


def add_arguments(parser) -> None:
    """Options of ``vpr-ros run``."""
    parser.add_argument('graph', choices=sorted(GRAPHS))
    parser.add_argument('--params-file', default='', help='YAML (default: config/<graph>.yaml)')
    parser.add_argument('--map', default='', help='map directory (sets map_path of every node)')
    parser.add_argument('--use-sim-time', action='store_true')
    parser.add_argument('--set', action='append', default=[], metavar='NODE.PARAM:=VALUE',
                        help='override one parameter of one node')
    parser.add_argument('--namespace', default='',
                        help="ROS namespace of every node ('robot1' or '/robot1')")
    parser.add_argument('--log-level', default='', help='debug | info | warn | error')
    parser.add_argument('--respawn', action='store_true',
                        help='restart a node that dies (after --respawn-delay) instead of '
                             'stopping the graph')
    parser.add_argument('--respawn-delay', type=float, default=2.0, metavar='S')
    parser.add_argument('--managed', action='store_true',
                        help='run lifecycle nodes and bring them up (configure, activate)')


def run(args) -> int:
    """Start the graph and supervise it until Ctrl-C / SIGTERM; 1 if a node died."""
    try:
        commands = graph_commands(args.graph, args.params_file, args.map, args.use_sim_time,
                                  args.set, args.managed, args.namespace, args.log_level)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        print(f'[vpr-ros run] {exc}', file=sys.stderr, flush=True)
        return 2
    stop = {'signal': None}

    def on_signal(signum, _frame):
        stop['signal'] = signum
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with NodeGroup(commands) as group:
        print(f'[vpr-ros run] started {", ".join(n for n, _ in commands)}', flush=True)
        if args.managed:
            from vpr_ros.graph.lifecycle import bring_up  # rclpy only here
            try:
                ns = normalize_namespace(args.namespace)
                bring_up([f'{ns}/{n}'.lstrip('/') for n, _ in commands],
                         alive=lambda: not group.poll_dead())
            except (RuntimeError, TimeoutError) as exc:
                print(f'[vpr-ros run] {exc}; stopping', file=sys.stderr, flush=True)
                return 1
        while stop['signal'] is None:
            dead = group.poll_dead()
            if dead and not args.respawn:
                print(f'[vpr-ros run] {dead[0][0]} exited with code {dead[0][1]}; stopping '
                      'the others', file=sys.stderr, flush=True)
                return 1
            for name, code in dead:
                print(f'[vpr-ros run] {name} exited with code {code}; restarting it in '
                      f'{args.respawn_delay:g} s', file=sys.stderr, flush=True)
                time.sleep(args.respawn_delay)
                group.respawn(name)
                if args.managed:
                    _bring_up_again(args.namespace, name, group)
            time.sleep(0.2)
    print('[vpr-ros run] stopped', flush=True)
    return 0


def _bring_up_again(namespace: str, name: str, group: NodeGroup) -> None:
    """Configure and activate a respawned managed node (as nav2_lifecycle_manager would)."""
    from vpr_ros.graph.lifecycle import bring_up  # rclpy only here
    try:
        bring_up([f'{normalize_namespace(namespace)}/{name}'.lstrip('/')],
                 alive=lambda: name not in dict(group.poll_dead()))
    except (RuntimeError, TimeoutError) as exc:
        print(f'[vpr-ros run] {name} respawned but did not come up: {exc}', file=sys.stderr,
              flush=True)
