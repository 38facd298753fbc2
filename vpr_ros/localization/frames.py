"""Time and frames of a prior (no ROS): odometry at the image time, camera -> base_link.

A descriptor arrives tens of milliseconds after its image was taken, and odometry at 50 Hz has
moved on by then: ``OdomBuffer.at(stamp)`` interpolates the odometry pose at the image stamp.
A map stores where the camera was; a robot's localization stack wants base_link, so
``base_from_camera`` removes the camera's mounting offset (its pose in base_link).
"""
from __future__ import annotations

import bisect
import collections
import math
from typing import Optional, Tuple

Pose2D = Tuple[float, float, float]  # x, y, yaw (radians)


def wrap(angle: float) -> float:
    return math.atan2(math.sin(angle), math.cos(angle))


class OdomBuffer:
    """The last ``horizon_s`` seconds of odometry poses, interpolated at a stamp."""

    def __init__(self, horizon_s: float = 5.0, max_extrapolation_s: float = 0.5):
        self.horizon_s, self.max_extrapolation_s = horizon_s, max_extrapolation_s
        self._t: collections.deque = collections.deque()
        self._pose: collections.deque = collections.deque()

    def add(self, stamp: float, pose: Pose2D) -> None:
        """Append a pose (stamps out of order are dropped: odometry is a stream)."""
        if self._t and stamp <= self._t[-1]:
            return
        self._t.append(float(stamp))
        self._pose.append(tuple(float(v) for v in pose))
        while self._t and self._t[0] < stamp - self.horizon_s:
            self._t.popleft()
            self._pose.popleft()

    def at(self, stamp: float) -> Optional[Pose2D]:
        """The pose at ``stamp``: interpolated between the two poses around it, else the
        nearest one within ``max_extrapolation_s``; None without odometry near that time."""
        if not self._t:
            return None
        t = list(self._t)
        i = bisect.bisect_left(t, stamp)
        if 0 < i < len(t):
            a, b = self._pose[i - 1], self._pose[i]
            f = (stamp - t[i - 1]) / (t[i] - t[i - 1])
            return (a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]),
                    wrap(a[2] + f * wrap(b[2] - a[2])))
        j = 0 if i == 0 else len(t) - 1
        if abs(t[j] - stamp) > self.max_extrapolation_s:
            return None
        x, y, yaw = self._pose[j]
        return x, y, wrap(yaw)


def base_from_camera(camera: Pose2D, mount: Pose2D) -> Pose2D:
    """base_link pose in the map from the camera's pose in the map and the camera's mounting
    pose in base_link (x forward, y left, yaw: REP 103)."""
    yaw = wrap(camera[2] - mount[2])
    c, s = math.cos(yaw), math.sin(yaw)
    return (camera[0] - (c * mount[0] - s * mount[1]),
            camera[1] - (s * mount[0] + c * mount[1]), yaw)
