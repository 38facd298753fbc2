"""Node health on /diagnostics (diagnostic_msgs/DiagnosticArray), as diagnostic_updater does.

The host of a component (vpr_ros.nodes.component) publishes, every ``PERIOD_S``, one
DiagnosticStatus named after the node's full name, from ``component.diagnostics()`` ->
``(level, message, {key: value})``. rqt_robot_monitor, diagnostic_aggregator and
``ros2 topic echo /diagnostics`` show it; a node that stops publishing is seen as stale.
"""
from __future__ import annotations

import socket
from typing import Callable, Dict, Optional, Tuple

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType

OK, WARN, ERROR = 0, 1, 2
LEVEL_NAMES = {OK: 'OK', WARN: 'WARN', ERROR: 'ERROR'}
PERIOD_S = 0.5  # twice diagnostic_updater's default rate: >= 1 Hz even with timer jitter
TOPIC = '/diagnostics'  # absolute, as diagnostic_updater: one topic for the whole robot

Report = Tuple[int, str, Dict[str, object]]


def _text(value) -> str:
    if isinstance(value, float):
        return f'{value:.3f}'.rstrip('0').rstrip('.') if abs(value) < 1e9 else f'{value:g}'
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def status_message(name: str, report: Report, hardware_id: str = '') -> DiagnosticStatus:
    """One DiagnosticStatus from a ``(level, message, {key: value})`` report."""
    level, message, values = report
    level = max(OK, min(ERROR, int(level)))
    status = DiagnosticStatus(name=name, message=str(message), hardware_id=hardware_id)
    status.level = bytes([level])
    status.values = [KeyValue(key=str(k), value=_text(v)) for k, v in (values or {}).items()]
    return status


class DiagnosticsPublisher:
    """Publishes ``component()``'s health on a timer of ``node``, for the node's whole life
    (a managed node reports while unconfigured or inactive too)."""

    def __init__(self, node, component: Callable[[], Optional[object]],
                 period_s: float = PERIOD_S, hardware_id: str = ''):
        self.node, self._component = node, component
        self.hardware_id = hardware_id or socket.gethostname()
        self.pub = node.create_publisher(DiagnosticArray, TOPIC, 10)
        # steady clock: health is reported while a simulated clock is paused too
        self.timer = node.create_timer(period_s, self.publish,
                                       clock=Clock(clock_type=ClockType.STEADY_TIME))

    def report(self) -> Report:
        """The hosted component's report; a missing or inactive component is at least WARN,
        a failing ``diagnostics()`` is ERROR (never an exception in the timer)."""
        component = self._component()
        if component is None:
            return WARN, 'unconfigured', {}
        try:
            level, message, values = component.diagnostics()
        except Exception as exc:
            return ERROR, f'diagnostics failed: {type(exc).__name__}: {exc}', {}
        if not getattr(component, 'active', True):
            return max(level, WARN), f'inactive; {message}', values
        return level, message, values

    def publish(self) -> None:
        out = DiagnosticArray()
        out.header.stamp = self.node.get_clock().now().to_msg()
        out.status = [status_message(self.node.get_fully_qualified_name(), self.report(),
                                     self.hardware_id)]
        self.pub.publish(out)

    def destroy(self) -> None:
        self.node.destroy_timer(self.timer)
        self.node.destroy_publisher(self.pub)
