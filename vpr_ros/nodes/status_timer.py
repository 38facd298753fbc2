"""The matcher's localization status on a timer, not only when a frame arrives.

A consumer (a behaviour tree, a fleet monitor) must tell "lost" from "the matcher is gone or
gets no images": ``StatusHeartbeat`` wraps the status publisher, republishes the last status
at least every ``PERIOD_S`` and publishes LOST once no frame was matched for ``timeout_s``.
Times are measured on the steady clock (arrival of data, also under use_sim_time); messages
are stamped with the node clock.
"""
from __future__ import annotations

import copy
import time

from rclpy.clock import Clock, ClockType

from vpr_ros.msg import LocalizationStatus

PERIOD_S = 0.5


class LastPublished:
    """A publisher wrapper remembering the last message, when it went out (steady seconds)
    and how many were published."""

    def __init__(self, publisher):
        self.publisher = publisher
        self.last = None
        self.last_time = None
        self.count = 0

    def publish(self, msg) -> None:
        self.publisher.publish(msg)
        self.last, self.last_time = msg, time.monotonic()
        self.count += 1

    def age(self):
        """Seconds since the last message, None if none was published."""
        return None if self.last_time is None else time.monotonic() - self.last_time

    def __getattr__(self, name):  # topic_name, get_subscription_count, ...
        return getattr(self.publisher, name)


class StatusHeartbeat(LastPublished):
    """Wraps the matcher's LocalizationStatus publisher (``component.status_pub``).

    The component publishes per frame as before; a timer of the component (destroyed with it)
    fills the gaps: the last status again (fresh stamp) when none went out for ``PERIOD_S``,
    LOST when none for ``timeout_s`` (or none yet). Nothing is published while inactive.
    """

    def __init__(self, component, publisher, timeout_s: float = 2.0):
        super().__init__(publisher)
        self.component, self.timeout_s = component, float(timeout_s)
        self.started = time.monotonic()
        self.lost_by_timeout = True  # no frame matched yet
        component.timer(PERIOD_S, self._tick, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def publish(self, msg) -> None:
        super().publish(msg)
        self.lost_by_timeout = False

    def silence(self) -> float:
        """Seconds without a status from a frame (since start when there was none)."""
        return time.monotonic() - (self.last_time or self.started)

    def _tick(self) -> None:
        if not getattr(self.component, 'active', True):
            return
        silent = self.silence()
        if silent < PERIOD_S:
            return
        if self.last is not None and silent < self.timeout_s:
            msg = copy.deepcopy(self.last)
            msg.relocalized = False  # an event of that frame, not of the repeat
        else:
            self.lost_by_timeout = True
            msg = LocalizationStatus(state=LocalizationStatus.LOST, confidence=0.0,
                                     num_hypotheses=0, relocalized=False,
                                     message=('no descriptor yet' if self.last is None else
                                              f'no descriptor for {silent:.1f} s'))
            msg.header.frame_id = getattr(self.component.cfg, 'frame_id', '')
        msg.header.stamp = self.component.node.get_clock().now().to_msg()
        self.publisher.publish(msg)  # not self.publish: a heartbeat is no new frame


def add_status_heartbeat(component, timeout_s: float) -> StatusHeartbeat:
    """Wrap the matcher's ``status_pub`` in a StatusHeartbeat and its ``pose_pub`` (when it has
    one) in LastPublished, whose age its diagnostics report."""
    component.status_pub = StatusHeartbeat(component, component.status_pub, timeout_s)
    if getattr(component, 'pose_pub', None) is not None:
        component.pose_pub = LastPublished(component.pose_pub)
    return component.status_pub
