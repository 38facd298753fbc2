"""``vpr-ros run GRAPH``: start a node graph from its YAML as separate processes.

The same graphs are described for ``ros2 launch`` in launch/*.launch.py (a test checks that both
name the same nodes, executables and parameter files). Ctrl-C, SIGTERM or the death of any node
stops them all.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

# graph -> (parameter file in config/, [(executable, node name)])
GRAPHS: Dict[str, tuple] = {
    'localize': ('localize.yaml', [('query_encoder', 'query_encoder'),
                                   ('gallery_server', 'gallery_server'),
                                   ('matcher', 'matcher')]),
}
MAP_PATH_NODES = ('query_encoder', 'gallery_server', 'matcher')


def share_dir() -> Path:
    """The folder holding config/ and launch/: the ament share folder or the source tree."""
    env = os.environ.get('VPR_ROS_SHARE')
    if env:
        return Path(env)
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory('vpr_ros'))
    except Exception:  # no ament index (pip install, source tree)
        return Path(__file__).resolve().parent.parent


def node_command(executable: str, name: str, params_file: str, overrides: List[str],
                 namespace: str = '', managed: bool = False) -> List[str]:
    """Command line that runs one node with its parameters, like launch_ros would."""
    cmd = [sys.executable, '-m', f'vpr_ros.nodes.{executable}']
    if managed:
        cmd.append('--managed')
    cmd += ['--ros-args', '-r', f'__node:={name}', '--params-file', params_file]
    if namespace:
        cmd += ['-r', f'__ns:={namespace}']
    for o in overrides:
        cmd += ['-p', o]
    return cmd


def graph_commands(graph: str, params_file: str = '', map_path: str = '',
                   use_sim_time: bool = False, sets: List[str] = (),
                   managed: bool = False, namespace: str = '') -> List[tuple]:
    """[(node name, command)] for ``graph``; ``sets`` are 'node.param:=value' overrides."""
    if graph not in GRAPHS:
        raise KeyError(f'unknown graph {graph!r}; known: {", ".join(GRAPHS)}')
    yaml_name, nodes = GRAPHS[graph]
    params_file = params_file or str(share_dir() / 'config' / yaml_name)
    if not Path(params_file).is_file():
        raise FileNotFoundError(f'parameter file {params_file} not found')
    out = []
    for executable, name in nodes:
        overrides = [s.split('.', 1)[1] for s in sets if s.startswith(name + '.')]
        if map_path and name in MAP_PATH_NODES:
            overrides.append(f'map_path:={map_path}')
        if use_sim_time:
            overrides.append('use_sim_time:=true')
        out.append((name, node_command(executable, name, params_file, overrides,
                                       namespace=namespace, managed=managed)))
    return out


class NodeGroup:
    """Child processes that live and die together."""

    def __init__(self, commands, env=None):
        self.procs = [(name, subprocess.Popen(cmd, env=env, start_new_session=True))
                      for name, cmd in commands]

    def poll_dead(self):
        return [(n, p.returncode) for n, p in self.procs if p.poll() is not None]

    def stop(self, timeout: float = 10.0) -> None:
        for _, p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        for _, p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def add_arguments(parser) -> None:
    parser.add_argument('graph', choices=sorted(GRAPHS))
    parser.add_argument('--params-file', default='', help='YAML (default: config/<graph>.yaml)')
    parser.add_argument('--map', default='', help='map directory (sets map_path of every node)')
    parser.add_argument('--use-sim-time', action='store_true')
    parser.add_argument('--set', action='append', default=[], metavar='NODE.PARAM:=VALUE',
                        help='override one parameter of one node')
    parser.add_argument('--namespace', default='', help='ROS namespace of every node')
    parser.add_argument('--managed', action='store_true',
                        help='run lifecycle nodes and bring them up (configure, activate)')


def run(args) -> int:
    commands = graph_commands(args.graph, args.params_file, args.map, args.use_sim_time,
                              args.set, args.managed, args.namespace)
    stop = {'signal': None}

    def on_signal(signum, _frame):
        stop['signal'] = signum
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with NodeGroup(commands) as group:
        print(f'[vpr-ros run] started {", ".join(n for n, _ in commands)}', flush=True)
        if args.managed:
            from vpr_ros.nodes.lifecycle_driver import bring_up
            try:
                ns = args.namespace.strip('/')
                bring_up([f'{ns}/{n}' if ns else n for n, _ in commands],
                         alive=lambda: not group.poll_dead())
            except (RuntimeError, TimeoutError) as exc:
                print(f'[vpr-ros run] {exc}; stopping', file=sys.stderr, flush=True)
                return 1
        while stop['signal'] is None:
            dead = group.poll_dead()
            if dead:
                print(f'[vpr-ros run] {dead[0][0]} exited with code {dead[0][1]}; stopping '
                      'the others', file=sys.stderr, flush=True)
                return 1
            time.sleep(0.2)
    print('[vpr-ros run] stopped', flush=True)
    return 0
