"""``vpr-ros run GRAPH``: start a node graph from its YAML as separate processes.

``ros2 launch vpr_ros <graph>.launch.py`` starts the same nodes from the same table (GRAPHS),
and a test compares the two live graphs. Ctrl-C or SIGTERM stops them all; a node that dies
stops the graph, or is restarted with ``--respawn`` (launch: ``use_respawn:=true``).
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


def normalize_namespace(namespace: str) -> str:
    """'robot1', '/robot1' and '/robot1/' -> '/robot1'; '' and '/' -> '' (the root)."""
    ns = (namespace or '').strip().strip('/')
    if ns and not all(part.replace('_', 'a').isalnum() and not part[0].isdigit()
                      for part in ns.split('/')):
        raise ValueError(f'namespace {namespace!r}: use letters, digits and _ (not starting '
                         'with a digit), separated by /')
    return '/' + ns if ns else ''


def node_command(executable: str, name: str, params_file: str, overrides: List[str],
                 namespace: str = '', managed: bool = False,
                 log_level: str = '') -> List[str]:
    """Command line that runs one node with its parameters, like launch_ros would."""
    cmd = [sys.executable, '-m', f'vpr_ros.nodes.{executable}']
    if managed:
        cmd.append('--managed')
    cmd += ['--ros-args', '-r', f'__node:={name}', '--params-file', params_file]
    namespace = normalize_namespace(namespace)
    if namespace:
        cmd += ['-r', f'__ns:={namespace}']
    if log_level:
        cmd += ['--log-level', log_level]
    for o in overrides:
        cmd += ['-p', o]
    return cmd


def graph_commands(graph: str, params_file: str = '', map_path: str = '',
                   use_sim_time: bool = False, sets: List[str] = (),
                   managed: bool = False, namespace: str = '',
                   log_level: str = '') -> List[tuple]:
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
                                       namespace=namespace, managed=managed,
                                       log_level=log_level)))
    return out


class NodeGroup:
    """Child processes that live and die together (or are restarted one by one)."""

    def __init__(self, commands, env=None):
        self.commands, self.env = dict(commands), env
        self.procs = [(name, self._start(cmd)) for name, cmd in commands]
        self.restarts: Dict[str, int] = {}

    def _start(self, cmd):
        return subprocess.Popen(cmd, env=self.env, start_new_session=True)

    def poll_dead(self):
        return [(n, p.returncode) for n, p in self.procs if p.poll() is not None]

    def respawn(self, name: str) -> None:
        """Start node ``name`` again with the command it was started with."""
        self.procs = [(n, self._start(self.commands[n]) if n == name else p)
                      for n, p in self.procs]
        self.restarts[name] = self.restarts.get(name, 0) + 1

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
            from vpr_ros.nodes.lifecycle_driver import bring_up
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
    from vpr_ros.nodes.lifecycle_driver import bring_up
    try:
        bring_up([f'{normalize_namespace(namespace)}/{name}'.lstrip('/')],
                 alive=lambda: name not in dict(group.poll_dead()))
    except (RuntimeError, TimeoutError) as exc:
        print(f'[vpr-ros run] {name} respawned but did not come up: {exc}', file=sys.stderr,
              flush=True)
