"""The real ROS 2 command line in tests: `ros2 launch/run/param/lifecycle` against the full
install that scripts/setup.sh builds into ./install (as colcon does on a distro).

Where ../shared/ros2-cli exists (the project's machines and CI) the set-up installs the CLI, and
a missing `ros2` fails the test; elsewhere these tests skip and say why.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from ros_harness import REPO

SHARED_CLI = REPO.parent / 'shared' / 'ros2-cli'
INSTALL = REPO / 'install' / 'vpr_ros'


def require_ros2() -> None:
    """Skip (user machine without the CLI) or fail (CI, where it must exist) without `ros2`."""
    if shutil.which('ros2') and (INSTALL / 'lib' / 'vpr_ros').is_dir():
        return
    if SHARED_CLI.is_dir():
        pytest.fail('`ros2` or the full install is missing although ../shared/ros2-cli exists: '
                    'run `make setup` (it installs the ROS 2 CLI and builds ./install)')
    pytest.skip('needs the ROS 2 command line (ros2 launch/run/param): source a ROS 2 distro, '
                'or install ../shared/ros2-cli as scripts/setup.sh does')


def installed_env(**extra) -> dict:
    """The environment of a user who sourced install/setup.bash: vpr_ros comes from the
    install prefix, never from this source tree."""
    env = {k: v for k, v in os.environ.items() if k != 'VPR_ROS_SHARE'}
    site = glob.glob(str(INSTALL / 'lib' / 'python3*' / 'site-packages'))
    keep = [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
            if p and Path(p).resolve() != REPO.resolve() and p not in site]
    env['PYTHONPATH'] = os.pathsep.join(site + keep)
    prefixes = [p for p in env.get('AMENT_PREFIX_PATH', '').split(os.pathsep)
                if p and Path(p).resolve() != INSTALL.resolve()]
    env['AMENT_PREFIX_PATH'] = os.pathsep.join([str(INSTALL)] + prefixes)
    env['LD_LIBRARY_PATH'] = os.pathsep.join(
        [str(INSTALL / 'lib')] + [p for p in env.get('LD_LIBRARY_PATH', '').split(os.pathsep)
                                  if p])
    env.update({k: str(v) for k, v in extra.items()})
    return env


def ros2(*args, timeout: float = 60.0, cwd=None, check: bool = True) -> str:
    """Run `ros2 ARGS` (without a daemon) and return its stdout (+stderr)."""
    res = subprocess.run(['ros2', *args], capture_output=True, text=True, timeout=timeout,
                         env=installed_env(), cwd=cwd or '/')
    out = res.stdout + res.stderr
    if check and res.returncode != 0:
        raise AssertionError(f'ros2 {" ".join(args)} exited {res.returncode}:\n{out}')
    return out


class Ros2Process:
    """`ros2 launch ...` or `ros2 run ...` in its own process group, logging to a file."""

    def __init__(self, args, log_path: Path, cwd=None):
        self.log_path = Path(log_path)
        self._log = open(self.log_path, 'w')
        self.proc = subprocess.Popen(['ros2', *args], stdout=self._log,
                                     stderr=subprocess.STDOUT, env=installed_env(),
                                     cwd=cwd or self.log_path.parent, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGINT to the process group (what Ctrl-C in a terminal does), then wait; kills
        after ``timeout``."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def graph_snapshot(client, namespace: str, timeout: float = 30.0) -> dict:
    """{node name: {parameter: value}} of every node in ``namespace``, read over the nodes'
    parameter services (what `ros2 param dump` shows), for comparing two live graphs."""
    from rcl_interfaces.srv import GetParameters, ListParameters
    from rclpy.parameter import parameter_value_to_python
    ns = '/' + namespace.strip('/')
    out = {}
    for name, node_ns in client.node.get_node_names_and_namespaces():
        if node_ns != ns:
            continue
        listed = client.call(ListParameters, f'{ns}/{name}/list_parameters',
                             ListParameters.Request(), timeout).result.names
        values = client.call(GetParameters, f'{ns}/{name}/get_parameters',
                             GetParameters.Request(names=listed), timeout).values
        out[name] = {k: parameter_value_to_python(v) for k, v in zip(listed, values)}
    return out
