"""Poses from bag messages: conversion to the map frame, a time-indexed track, keyframing."""
from __future__ import annotations

import bisect
import dataclasses
import math
from typing import Dict, List, Optional, Tuple

import numpy as np

POSE_TYPES = ('nav_msgs/msg/Odometry', 'geometry_msgs/msg/PoseStamped',
              'geometry_msgs/msg/PoseWithCovarianceStamped', 'sensor_msgs/msg/NavSatFix')
FIX_TYPE = 'sensor_msgs/msg/NavSatFix'


@dataclasses.dataclass
class PoseSample:
    """A pose in the map frame (metres, yaw radians) at ``stamp`` seconds."""

    stamp: float
    x: float
    y: float
    z: float = 0.0
    yaw: float = 0.0
    lat: float = math.nan
    lon: float = math.nan


def norm_type(msgtype: str) -> str:
    """ROS 1 'pkg/Type' -> ROS 2 'pkg/msg/Type' so both bag kinds compare alike."""
    parts = msgtype.split('/')
    return f'{parts[0]}/msg/{parts[1]}' if len(parts) == 2 else msgtype


def header_stamp(msg, fallback: float) -> float:
    h = getattr(msg, 'header', None)
    st = getattr(h, 'stamp', None)
    if st is None:
        return fallback
    sec = getattr(st, 'sec', getattr(st, 'secs', 0))
    nsec = getattr(st, 'nanosec', getattr(st, 'nsecs', 0))
    t = sec + nsec * 1e-9
    return t if t > 0 else fallback


def yaw_of(q) -> float:
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def pose_from_msg(msgtype: str, msg, stamp: float) -> Optional[PoseSample]:
    """PoseSample from one pose message (NavSatFix gives lat/lon only); None if unusable."""
    t = norm_type(msgtype)
    if t == FIX_TYPE:
        if msg.status.status < -1 or not (math.isfinite(msg.latitude)
                                          and math.isfinite(msg.longitude)):
            return None
        return PoseSample(stamp, math.nan, math.nan, float(msg.altitude), math.nan,
                          float(msg.latitude), float(msg.longitude))
    pose = msg.pose.pose if t in ('nav_msgs/msg/Odometry',
                                  'geometry_msgs/msg/PoseWithCovarianceStamped') else msg.pose
    p = pose.position
    vals = (p.x, p.y, p.z)
    if not all(math.isfinite(v) for v in vals):
        return None
    return PoseSample(stamp, float(p.x), float(p.y), float(p.z), yaw_of(pose.orientation))


class PoseTrack:
    """Time-sorted poses with lookup by stamp (interpolated, or nearest, within a tolerance)."""

    def __init__(self, samples: List[PoseSample]):
        self.samples = sorted(samples, key=lambda s: s.stamp)
        self.stamps = [s.stamp for s in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def as_array(self) -> np.ndarray:
        """(N, 7) stamp, x, y, z, yaw, lat, lon."""
        return np.array([[s.stamp, s.x, s.y, s.z, s.yaw, s.lat, s.lon] for s in self.samples],
                        np.float64).reshape(-1, 7)

    def at(self, stamp: float, tolerance: float) -> Optional[PoseSample]:
        """Interpolated pose if samples within ``tolerance`` bracket ``stamp``, else the nearest
        within ``tolerance``, else None."""
        i = bisect.bisect_left(self.stamps, stamp)
        before = self.samples[i - 1] if i > 0 else None
        after = self.samples[i] if i < len(self.samples) else None
        if after is not None and after.stamp == stamp:
            return after
        ok_b = before is not None and stamp - before.stamp <= tolerance
        ok_a = after is not None and after.stamp - stamp <= tolerance
        if ok_b and ok_a:
            w = (stamp - before.stamp) / (after.stamp - before.stamp)
            dyaw = math.atan2(math.sin(after.yaw - before.yaw), math.cos(after.yaw - before.yaw))

            def lerp(a, b):
                return a + w * (b - a)
            return PoseSample(stamp, lerp(before.x, after.x), lerp(before.y, after.y),
                              lerp(before.z, after.z), before.yaw + w * dyaw,
                              lerp(before.lat, after.lat), lerp(before.lon, after.lon))
        if ok_b or ok_a:
            prefer_before = ok_b and (not ok_a or stamp - before.stamp <= after.stamp - stamp)
            near = before if prefer_before else after
            return dataclasses.replace(near, stamp=stamp)
        return None


def fill_fix_track(samples: List[PoseSample], origin, min_move_m: float = 0.5):
    """NavSatFix samples -> map-frame x, y (via ``origin``); yaw from the direction of travel."""
    if not samples:
        return
    xy = origin.latlon_to_xy([s.lat for s in samples], [s.lon for s in samples])
    yaw = 0.0
    for i, s in enumerate(samples):
        s.x, s.y = float(xy[i, 0]), float(xy[i, 1])
        j = min(i + 1, len(samples) - 1)
        d = xy[j] - xy[i] if j != i else xy[i] - xy[max(i - 1, 0)]
        if math.hypot(*d) >= min_move_m:
            yaw = math.atan2(d[1], d[0])
        s.yaw = yaw


FIX_TOLERANCE_S = 1.0  # a NavSatFix this close (each side) gives an image's lat/lon


def fix_topic_beside(topics: Dict[str, str], pose_topic: Optional[str]) -> Optional[str]:
    """The bag's only NavSatFix topic when ``pose_topic`` is another (local) pose topic: the
    one that gives places their lat/lon; None otherwise."""
    if not pose_topic or norm_type(topics.get(pose_topic, '')) == FIX_TYPE:
        return None
    fixes = [t for t, m in topics.items() if norm_type(m) == FIX_TYPE]
    return fixes[0] if len(fixes) == 1 else None


def latlon_at(track: 'PoseTrack', stamp: float,
              tolerance: float = FIX_TOLERANCE_S) -> Tuple[float, float]:
    """(lat, lon) of a NavSatFix track at ``stamp`` (interpolated), NaN when none is close."""
    s = track.at(stamp, tolerance) if len(track) else None
    return (s.lat, s.lon) if s is not None else (math.nan, math.nan)


@dataclasses.dataclass
class KeyframeConfig:
    """A frame becomes a keyframe after moving ``dist_m`` or turning ``angle_deg``."""

    dist_m: float = 2.0
    angle_deg: float = 15.0


class KeyframeSelector:
    """Stateful keyframe decision over a stream of poses (the first pose is a keyframe)."""

    def __init__(self, cfg: KeyframeConfig):
        self.cfg = cfg
        self.last: Optional[PoseSample] = None

    def __call__(self, pose: PoseSample) -> bool:
        last = self.last
        if last is not None:
            moved = math.hypot(pose.x - last.x, pose.y - last.y)
            turned = abs(math.degrees(math.atan2(math.sin(pose.yaw - last.yaw),
                                                 math.cos(pose.yaw - last.yaw))))
            if moved < self.cfg.dist_m and turned < self.cfg.angle_deg:
                return False
        self.last = pose
        return True


# ---- frames: the pose messages' frame, static transforms, planar camera mounts --------------

def msg_frames(msgtype: str, msg):
    """(frame the pose is expressed in, frame whose pose it is) of one pose message; '' where
    the message does not say. NavSatFix is geographic: (None, the antenna's frame)."""
    t = norm_type(msgtype)
    h = getattr(msg, 'header', None)
    frame = str(getattr(h, 'frame_id', '') or '').lstrip('/')
    if t == 'sensor_msgs/msg/NavSatFix':
        return None, frame
    body = str(getattr(msg, 'child_frame_id', '') or '').lstrip('/')
    return frame, body


def quat_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    n = math.sqrt(x * x + y * y + z * z + w * w) or 1.0
    x, y, z, w = x / n, y / n, z / n, w / n
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def transform_matrix(translation, rotation) -> np.ndarray:
    """4x4 homogeneous matrix of a geometry_msgs Transform (child pose in its parent)."""
    m = np.eye(4)
    m[:3, :3] = quat_matrix(rotation.x, rotation.y, rotation.z, rotation.w)
    m[:3, 3] = (translation.x, translation.y, translation.z)
    return m


class StaticTransforms:
    """The static transform tree of a bag (/tf_static): parent -> child 4x4 matrices."""

    def __init__(self):
        self.edges: Dict[str, Dict[str, np.ndarray]] = {}

    def add(self, parent: str, child: str, m: np.ndarray) -> None:
        parent, child = parent.lstrip('/'), child.lstrip('/')
        self.edges.setdefault(parent, {})[child] = m
        self.edges.setdefault(child, {})[parent] = np.linalg.inv(m)

    def __len__(self) -> int:
        return sum(len(v) for v in self.edges.values()) // 2

    def lookup(self, parent: str, child: str) -> Optional[Tuple[np.ndarray, List[str]]]:
        """Pose of ``child`` in ``parent`` chained through intermediate frames, with the path
        of frames; None when the tree does not connect them."""
        if parent == child:
            return np.eye(4), [parent]
        prev: Dict[str, Optional[str]] = {parent: None}
        todo = [parent]
        while todo:
            nxt = []
            for f in todo:
                for g in self.edges.get(f, {}):
                    if g not in prev:
                        prev[g] = f
                        nxt.append(g)
            todo = nxt
        if child not in prev:
            return None
        path = [child]
        while prev[path[-1]] is not None:
            path.append(prev[path[-1]])
        path.reverse()
        m = np.eye(4)
        for a, b in zip(path, path[1:]):
            m = m @ self.edges[a][b]
        return m, path


def is_optical(frame: str, m: np.ndarray) -> bool:
    """REP 103 optical frame (z forward, x right, y down): by its name, or by its axes (y
    pointing down, z horizontal) when the name does not say."""
    if 'optical' in frame.lower():
        return True
    return m[2, 1] < -0.7 and abs(m[2, 2]) < 0.3


def planar_mount(m: np.ndarray, optical: bool) -> Tuple[float, float, float]:
    """(x, y, yaw) of a camera from its 3D pose ``m`` in the body frame: yaw is the direction
    of its forward axis (z for an optical frame, x otherwise) on the ground plane."""
    fwd = m[:3, 2] if optical else m[:3, 0]
    if math.hypot(fwd[0], fwd[1]) < 1e-6:
        raise ValueError('the camera looks straight up or down: no yaw in the ground plane')
    return float(m[0, 3]), float(m[1, 3]), math.atan2(fwd[1], fwd[0])


def compose2d(pose: PoseSample, offset: Tuple[float, float, float]) -> PoseSample:
    """``pose`` followed by ``offset`` (x, y, yaw in the pose's own frame)."""
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    yaw = pose.yaw + offset[2]
    return dataclasses.replace(pose, x=pose.x + c * offset[0] - s * offset[1],
                               y=pose.y + s * offset[0] + c * offset[1],
                               yaw=math.atan2(math.sin(yaw), math.cos(yaw)))


def anchor2d(pose: PoseSample, anchor: Tuple[float, float, float]) -> PoseSample:
    """``pose`` given in a frame whose pose in the map is ``anchor`` -> the map frame."""
    c, s = math.cos(anchor[2]), math.sin(anchor[2])
    yaw = pose.yaw + anchor[2]
    return dataclasses.replace(pose, x=anchor[0] + c * pose.x - s * pose.y,
                               y=anchor[1] + s * pose.x + c * pose.y,
                               yaw=math.atan2(math.sin(yaw), math.cos(yaw)))
