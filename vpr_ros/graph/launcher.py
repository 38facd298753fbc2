"""Node graphs as processes: the GRAPHS table, node command lines and a NodeGroup of them.

``vpr-ros run GRAPH`` (vpr_ros/cli/run.py) and ``ros2 launch vpr_ros <graph>.launch.py`` start
the same nodes from the same table (GRAPHS), and a test compares the two live graphs.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

from vpr_ros.share import share_dir

# graph -> (parameter file in config/, [(executable, node name)])
GRAPHS: Dict[str, tuple] = {
    'localize': ('localize.yaml', [('query_encoder', 'query_encoder'),
                                   ('gallery_server', 'gallery_server'),
                                   ('matcher', 'matcher')]),
}
MAP_PATH_NODES = ('query_encoder', 'gallery_server', 'matcher')


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


__all__ = ['GRAPHS', 'MAP_PATH_NODES', 'NodeGroup', 'graph_commands', 'node_command',
           'normalize_namespace', 'share_dir']
