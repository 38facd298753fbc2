"""Node logic as components, hosted by a plain rclpy Node or by a managed (lifecycle) node.

A component creates its publishers, subscriptions, services and timers through this base
class, which records them so a lifecycle ``cleanup`` can destroy them; ``active`` gates the
work (a configured but inactive managed node receives but does not publish).
"""
from __future__ import annotations

import gc
import signal
import sys
from typing import Type

import rclpy
from rclpy.executors import (ExternalShutdownException, MultiThreadedExecutor,
                             SingleThreadedExecutor)
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node
from rcl_interfaces.msg import SetParametersResult

from vpr_ros.config import field_defaults
from vpr_ros.nodes.diagnostics import DiagnosticsPublisher, OK
from vpr_ros.nodes.params import declare_params, read_config


def startup_parameter_guard(node: Node, config_cls, component_cls, running) -> None:
    """Refuse ``ros2 param set`` of a setting the running component will not re-read, instead
    of accepting a value that changes nothing. ``running()`` says whether settings are in use
    (a managed node takes any value while unconfigured)."""
    names = set(_flat_fields(config_cls)) - set(component_cls.reconfigurable)

    def guard(params):
        fixed = [p.name for p in params if p.name in names]
        if fixed and running():
            return SetParametersResult(successful=False, reason=(
                f'{", ".join(fixed)} is read when the node starts (managed nodes: on configure); '
                'restart it with the new value, or deactivate + cleanup, set, configure'))
        return SetParametersResult(successful=True)
    node.add_on_set_parameters_callback(guard)


def _flat_fields(cls, prefix: str = ''):
    for name, default in field_defaults(cls).items():
        if hasattr(default, '__dataclass_fields__'):
            yield from _flat_fields(type(default), f'{prefix}{name}.')
        else:
            yield prefix + name


class Component:
    """Base of the node logic: entity bookkeeping and the active flag.

    ``executor_threads``: 1 runs the node in a SingleThreadedExecutor (much less overhead
    per message than rclpy's MultiThreadedExecutor; right for nodes whose callbacks only park
    work or are serialised anyway), more for nodes with concurrent service calls.
    """

    executor_threads = 2
    # parameters the component applies while running (it registers its own callback for them);
    # every other setting is read at start-up (configure) and a runtime change is refused
    reconfigurable: tuple = ()

    def __init__(self, node: Node, cfg):
        self.node, self.cfg = node, cfg
        self.active = False
        self._entities = []

    @property
    def log(self):
        return self.node.get_logger()

    def publisher(self, *args, **kw):
        return self._keep(self.node.create_publisher(*args, **kw), 'publisher')

    def subscription(self, *args, **kw):
        return self._keep(self.node.create_subscription(*args, **kw), 'subscription')

    def service(self, *args, **kw):
        return self._keep(self.node.create_service(*args, **kw), 'service')

    def timer(self, *args, **kw):
        return self._keep(self.node.create_timer(*args, **kw), 'timer')

    def _keep(self, entity, kind: str):
        self._entities.append((kind, entity))
        return entity

    def shutdown(self) -> None:
        """Destroy everything the component created (subclasses stop their threads first)."""
        self.active = False
        for kind, entity in reversed(self._entities):
            getattr(self.node, f'destroy_{kind}')(entity)
        self._entities.clear()

    def diagnostics(self):
        """Health published on /diagnostics: (level OK/WARN/ERROR, message, {key: value})."""
        return OK, 'running', {}


class ComponentNode(Node):
    """An always-active node hosting one component."""

    def __init__(self, name: str, component_cls: Type[Component], config_cls):
        self.component = None  # destroy_node may run before the component exists
        super().__init__(name)
        declare_params(self, config_cls)
        self.cfg = read_config(self, config_cls)
        self.component = component_cls(self, self.cfg)
        self.component.active = True
        startup_parameter_guard(self, config_cls, component_cls, lambda: True)
        self.diagnostics = DiagnosticsPublisher(self, lambda: self.component)

    def destroy_node(self):
        if self.component is not None:
            self.component.shutdown()
            self.component = None
        return super().destroy_node()


class ManagedComponentNode(LifecycleNode):
    """A lifecycle node (nav2_lifecycle_manager compatible) hosting one component."""

    def __init__(self, name: str, component_cls: Type[Component], config_cls):
        super().__init__(name)
        self._component_cls, self._config_cls = component_cls, config_cls
        declare_params(self, config_cls)
        self.component = None
        startup_parameter_guard(self, config_cls, component_cls,
                                lambda: self.component is not None)
        self.diagnostics = DiagnosticsPublisher(self, lambda: self.component)

    def on_configure(self, state):
        try:
            self.cfg = read_config(self, self._config_cls)
            self.component = self._component_cls(self, self.cfg)
        except Exception as exc:  # a failed configure leaves the node unconfigured
            self.get_logger().error(f'configure failed: {exc}')
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state):
        self.component.active = True
        return super().on_activate(state)

    def on_deactivate(self, state):
        self.component.active = False
        return super().on_deactivate(state)

    def on_cleanup(self, state):
        self._drop_component()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state):
        self._drop_component()
        return TransitionCallbackReturn.SUCCESS

    def _drop_component(self):
        if self.component is not None:
            self.component.shutdown()
            self.component = None

    def destroy_node(self):
        self._drop_component()
        return super().destroy_node()


def run_component(name: str, component_cls: Type[Component], config_cls, args=None) -> None:
    """Entry point of a node executable; ``--managed`` (before --ros-args) hosts it as a
    lifecycle node that waits for configure/activate."""
    argv = list(sys.argv if args is None else args)
    non_ros = rclpy.utilities.remove_ros_args(argv)
    host = ManagedComponentNode if '--managed' in non_ros else ComponentNode
    # rclpy's handler shuts the context down and then calls this one: later signals are
    # ignored, because Ctrl-C in a terminal reaches a node twice (its process group, then
    # ros2 launch) and the second must not interrupt the clean-up (exit -2, "process died")
    signal.signal(signal.SIGINT, _ignore_further_signals)
    signal.signal(signal.SIGTERM, _ignore_further_signals)
    rclpy.init(args=argv)
    node = None
    try:
        try:
            node = host(name, component_cls, config_cls)
        except Exception as exc:  # a node that cannot start says why and exits non-zero
            if not rclpy.ok():  # ... unless a signal stopped it while it was starting
                return
            print(f'[FATAL] {name} could not start: {exc}', file=sys.stderr, flush=True)
            raise SystemExit(1)
        # Everything built at start-up (torch, faiss, the map) moves to a permanent GC
        # generation: full collections then skip it (a gen-2 pass over torch's objects took
        # 86 ms in query_encoder and stalled the frame in flight).
        gc.collect()
        gc.freeze()
        if not rclpy.ok():  # a signal arrived while the node was starting
            return
        n = int(getattr(component_cls, 'executor_threads', 2))
        executor = SingleThreadedExecutor() if n <= 1 else MultiThreadedExecutor(num_threads=n)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise
        # a signal shut the context down while the node was still starting: a normal stop
    finally:
        _ignore_further_signals()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


def _ignore_further_signals(*_args) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
