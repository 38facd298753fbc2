"""Bring managed nodes up (configure, activate) in order, like nav2_lifecycle_manager autostart.

Used by ``vpr-ros run GRAPH --managed`` and ``vpr-ros lifecycle up`` where Nav2 is not
installed; with Nav2, use nav2_lifecycle_manager with ``node_names`` (see
launch/nav2_localize.launch.py).
"""
from __future__ import annotations

import time
from typing import Iterable

import rclpy
from rclpy.executors import SingleThreadedExecutor
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState


def _call(node, client, request, timeout: float, alive=None):
    deadline = time.monotonic() + timeout
    while not client.wait_for_service(timeout_sec=0.5):
        if alive is not None and not alive():
            raise RuntimeError(f'{client.srv_name}: the node exited before coming up')
        if time.monotonic() > deadline:
            raise TimeoutError(f'{client.srv_name} not available after {timeout:.0f} s')
    future = client.call_async(request)
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        executor.spin_until_future_complete(future, timeout_sec=timeout)
    finally:
        executor.remove_node(node)
        executor.shutdown()
    if not future.done():
        raise TimeoutError(f'{client.srv_name} did not answer in {timeout:.0f} s')
    return future.result()


def bring_up(node_names: Iterable[str], timeout: float = 300.0, alive=None) -> None:
    """Configure then activate each managed node; RuntimeError naming the node that failed.
    ``alive()`` (optional) returning False aborts the wait (a node process died)."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('vpr_lifecycle_driver', context=context)
    try:
        for name in (n.strip('/') for n in node_names):
            change = node.create_client(ChangeState, f'/{name}/change_state')
            get = node.create_client(GetState, f'/{name}/get_state')
            for tid, label in ((Transition.TRANSITION_CONFIGURE, 'configure'),
                               (Transition.TRANSITION_ACTIVATE, 'activate')):
                t0 = time.monotonic()
                res = _call(node, change, ChangeState.Request(
                    transition=Transition(id=tid)), timeout, alive)
                if not res.success:
                    state = _call(node, get, GetState.Request(), 10.0).current_state.label
                    raise RuntimeError(f'{name}: {label} failed (state {state})')
                print(f'[lifecycle] {name}: {label}d in {time.monotonic() - t0:.1f} s',
                      flush=True)
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
