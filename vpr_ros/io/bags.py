"""Read camera frames and poses from rosbag1 / rosbag2 (sqlite3 and MCAP) bags without ROS.

``BagReader(path)`` finds the image and pose topics (or takes them by name), builds the pose
track and yields ``BagFrame(stamp, rgb, pose-or-None)``. Damaged data never crashes a read:
undecodable images, unreadable messages and a truncated end are logged as warnings and
counted in ``reader.warnings``.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import numpy as np

from vpr_ros.imaging import decode_compressed, decode_raw, ImageDecodeError
from vpr_ros.io.bag_backends import open_backend
from vpr_ros.io.bag_poses import (fill_fix_track, header_stamp, msg_frames, norm_type,
                                  pose_from_msg, POSE_TYPES, PoseSample, PoseTrack,
                                  StaticTransforms, transform_matrix)

log = logging.getLogger(__name__)
IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
TF_TYPE = 'tf2_msgs/msg/TFMessage'


class BagError(ValueError):
    """A bag that cannot be used as asked (missing, no image topic, ambiguous topics...)."""


@dataclasses.dataclass
class BagFrame:
    stamp: float                     # seconds (header stamp, or log time if the header is 0)
    rgb: np.ndarray                  # (H, W, 3) uint8
    pose: Optional[PoseSample]       # map-frame pose at ``stamp``, None if no pose is close


def _pick(topics: Dict[str, str], kinds, name: Optional[str], what: str, path) -> str:
    listing = ', '.join(f'{t} [{m}]' for t, m in sorted(topics.items())) or 'none'
    if name:
        if name not in topics:
            raise BagError(f'{path}: no topic {name!r}; the bag has: {listing}')
        if norm_type(topics[name]) not in kinds:
            raise BagError(f'{path}: topic {name!r} is {topics[name]}, not a {what} type '
                           f'({", ".join(kinds)})')
        return name
    cands = sorted(t for t, m in topics.items() if norm_type(m) in kinds)
    if not cands:
        raise BagError(f'{path}: no {what} topic ({", ".join(kinds)}); the bag has: {listing}')
    if len(cands) > 1:
        flag = '--image-topic' if what == 'image' else '--pose-topic'
        raise BagError(f'{path}: several {what} topics, name one with {flag}: '
                       f'{", ".join(f"{t} [{topics[t]}]" for t in cands)}')
    return cands[0]


class BagReader:
    """Frames and poses of one bag. ``origin`` (vpr_ros.geo.MapOrigin) maps NavSatFix to the
    map frame; without one the first fix becomes the origin (see ``self.origin``)."""

    def __init__(self, path, image_topic: Optional[str] = None,
                 pose_topic: Optional[str] = None, origin=None, tolerance_s: float = 0.1,
                 require_pose: bool = True):
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f'bag {self.path} does not exist')
        self.tolerance_s = float(tolerance_s)
        self.origin = origin
        self.warnings = 0
        self.missing_poses = 0
        try:
            self._reader, warning = open_backend(self.path)
        except Exception as exc:
            raise BagError(f'{self.path}: cannot open as a rosbag1/rosbag2 bag ({exc})') from None
        if warning:
            self._warn('%s', warning)
        self.topics = dict(self._reader.topics)
        self.image_topic = _pick(self.topics, IMAGE_TYPES, image_topic, 'image', self.path)
        self.pose_topic = None
        if pose_topic or require_pose:
            self.pose_topic = _pick(self.topics, POSE_TYPES, pose_topic, 'pose', self.path)
        self._track: Optional[PoseTrack] = None
        # frames of the pose messages (see pose_track()): {header.frame_id: count} (None for
        # NavSatFix, geographic) and {frame whose pose it is: count} ('' = not said)
        self.pose_frames: Dict[Optional[str], int] = {}
        self.body_frames: Dict[str, int] = {}

    def close(self) -> None:
        self._reader.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _warn(self, msg, *args) -> None:
        self.warnings += 1
        log.warning('%s: ' + msg, self.path, *args)

    def _messages(self, topic: str):
        """(msgtype, stamp, msg) of ``topic``; damaged messages/tails are warned and skipped."""
        it = self._reader.messages(topic)
        count = 0
        while True:
            try:
                msgtype, t_ns, raw = next(it)
            except StopIteration:
                return
            except Exception as exc:  # truncated chunk / malformed file: keep what we read
                self._warn('reading %s stopped after %d messages (%s: %s); the bag looks '
                           'truncated or damaged', topic, count, type(exc).__name__, exc)
                return
            count += 1
            try:
                msg = self._reader.deserialize(raw, msgtype)
            except Exception as exc:
                self._warn('unreadable %s message at %.3f s skipped (%s)', topic, t_ns * 1e-9,
                           exc)
                continue
            yield msgtype, header_stamp(msg, t_ns * 1e-9), msg

    def pose_track(self) -> PoseTrack:
        """All poses of the pose topic in the map frame, sorted by stamp (cached)."""
        if self._track is not None:
            return self._track
        samples: List[PoseSample] = []
        last, unordered, fix = -np.inf, 0, False
        for msgtype, stamp, msg in self._messages(self.pose_topic) if self.pose_topic else ():
            fix = norm_type(msgtype) == 'sensor_msgs/msg/NavSatFix'
            frame, body = msg_frames(msgtype, msg)
            self.pose_frames[frame] = self.pose_frames.get(frame, 0) + 1
            self.body_frames[body] = self.body_frames.get(body, 0) + 1
            s = pose_from_msg(msgtype, msg, stamp)
            if s is None:
                self._warn('pose at %.3f s has no valid position; skipped', stamp)
                continue
            unordered += stamp < last
            last = max(last, stamp)
            samples.append(s)
        if unordered:
            self._warn('%d pose messages out of time order; sorted by stamp', unordered)
        track = PoseTrack(samples)
        if fix and len(track):
            if self.origin is None:
                from vpr_ros.geo import MapOrigin
                self.origin = MapOrigin.from_latlon(track.samples[0].lat, track.samples[0].lon)
            fill_fix_track(track.samples, self.origin)
        self._track = track
        return track

    def image_frame(self) -> str:
        """header.frame_id of the first readable image message ('' if none says)."""
        for _msgtype, _stamp, msg in self._messages(self.image_topic):
            return str(getattr(getattr(msg, 'header', None), 'frame_id', '') or '').lstrip('/')
        return ''

    def static_transforms(self) -> Optional[StaticTransforms]:
        """The bag's /tf_static tree; None when the bag has no /tf_static topic."""
        topics = [t for t, m in self.topics.items()
                  if norm_type(m) == TF_TYPE and t.rstrip('/').endswith('tf_static')]
        if not topics:
            return None
        tree = StaticTransforms()
        for topic in sorted(topics):
            for _msgtype, _stamp, msg in self._messages(topic):
                for tf in getattr(msg, 'transforms', ()):
                    tree.add(tf.header.frame_id, tf.child_frame_id,
                             transform_matrix(tf.transform.translation, tf.transform.rotation))
        return tree

    def frames(self) -> Iterator[BagFrame]:
        """Decoded image frames with the pose at their stamp (None when none is within
        ``tolerance_s``). Undecodable images are warned about and skipped."""
        track = self.pose_track()
        last, missing = -np.inf, 0
        for msgtype, stamp, msg in self._messages(self.image_topic):
            try:
                if norm_type(msgtype).endswith('CompressedImage'):
                    rgb = decode_compressed(msg.format, msg.data)
                else:
                    rgb = decode_raw(msg.encoding, msg.height, msg.width, msg.step, msg.data,
                                     bool(getattr(msg, 'is_bigendian', 0)))
            except ImageDecodeError as exc:
                self._warn('image at %.3f s skipped: %s', stamp, exc)
                continue
            if not rgb.flags.writeable:  # views of the message buffer; torch wants writable
                rgb = rgb.copy()
            if stamp < last:
                self._warn('image at %.3f s is earlier than the previous one (%.3f s)', stamp,
                           last)
            last = max(last, stamp)
            pose = track.at(stamp, self.tolerance_s) if len(track) else None
            if pose is None and self.pose_topic:
                missing += 1
                if missing == 1:
                    self._warn('no pose within %.3f s of image at %.3f s (further misses are '
                               'counted in missing_poses)', self.tolerance_s, stamp)
            self.missing_poses = missing
            yield BagFrame(stamp, rgb, pose)
