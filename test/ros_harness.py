"""Test harness: real node processes over real DDS, isolated on a private domain, loopback only."""
from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# services whose requests change nothing: safe to send again when an answer is lost
_READ_ONLY = {'GetMapInfo', 'QueryMap', 'GetState', 'GetParameters', 'ListParameters'}


def isolate_ros_domain() -> int:
    """Give this test run its own DDS domain, discovery on loopback only (set before init)."""
    domain = int(os.environ.get('VPR_TEST_DOMAIN_ID') or random.randint(30, 200))
    os.environ['ROS_DOMAIN_ID'] = str(domain)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ['ROS_LOCALHOST_ONLY'] = '1'
    os.environ.setdefault('RCUTILS_COLORIZED_OUTPUT', '0')
    os.environ['PYTHONUNBUFFERED'] = '1'
    return domain


def wait_for(predicate, timeout: float = 30.0, period: float = 0.05, what: str = 'condition'):
    """Poll ``predicate`` until it returns a truthy value; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(period)
    raise AssertionError(f'timed out after {timeout:.0f} s waiting for {what}')


class NodeProcess:
    """One node in its own process, logging to a file the test can read."""

    def __init__(self, executable: str, params_file: str, log_dir: Path, name: str = '',
                 overrides=(), namespace: str = ''):
        from vpr_ros.graph.launcher import node_command
        self.name = name or executable
        self.log_path = Path(log_dir) / f'{self.name}.log'
        cmd = node_command(executable, self.name, params_file, list(overrides), namespace)
        self._log = open(self.log_path, 'w')
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class RosClient:
    """An rclpy node in the test process, spun in a background thread."""

    def __init__(self, name: str = 'vpr_test_client'):
        import rclpy
        from rclpy.executors import MultiThreadedExecutor
        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self._clients = {}
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def collect(self, msg_type, topic: str, qos=10):
        """Subscribe and return the list the received messages are appended to."""
        received = []
        self.node.create_subscription(msg_type, topic, received.append, qos)
        return received

    def call(self, srv_type, name: str, request, timeout: float = 30.0, resend=None):
        """Call a service and return its response; AssertionError after ``timeout``.
        Read-only requests, and adds carrying a request_id (applied once by the server), are
        sent again until one answer arrives (see vpr_ros.graph.service_call)."""
        from vpr_ros.graph.service_call import call_service
        key = (srv_type, name)
        if key not in self._clients:
            self._clients[key] = self.node.create_client(srv_type, name)
        if resend is None:
            resend = srv_type.__name__ in _READ_ONLY or bool(getattr(request, 'request_id', ''))
        try:
            return call_service(self._clients[key], request, timeout, resend)
        except TimeoutError as e:
            raise AssertionError(str(e)) from None

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


def warm_up(publish, arrived, period: float = 2.0, attempts: int = 30,
            what: str = 'a first answer') -> int:
    """Call ``publish(i)`` every ``period`` seconds until ``arrived()`` is truthy; returns the
    attempt that got through. DDS can match a publisher with the first node of a graph before
    the next node's subscription is matched, so the first messages of a test may be lost."""
    for i in range(attempts):
        publish(i)
        try:
            wait_for(arrived, period, what=what)
            return i
        except AssertionError:
            continue
    raise AssertionError(f'{what}: nothing after {attempts} tries, {attempts * period:.0f} s')


def python_env() -> dict:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(REPO)] + sys.path[1:])
    return env


def wait_started(nodes: dict, encoders=(), matchers=(), timeout: float = 240.0) -> None:
    """Wait until each named query_encoder says 'ready' and each named matcher 'matching
    against' its map; a node that exits meanwhile fails the wait with its log."""
    for name, marker in [(n, 'ready') for n in encoders] + \
            [(n, 'matching against') for n in matchers]:
        node = nodes[name]
        wait_for(lambda: marker in node.log() or not node.alive(), timeout,
                 what=f'{name} start')
        assert node.alive(), node.log()[-2000:]


def stop_all(client, nodes) -> None:
    """Close the test client, then stop every node process."""
    client.close()
    for n in (nodes.values() if isinstance(nodes, dict) else nodes):
        n.stop()
