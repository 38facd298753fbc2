"""Play frames to the running nodes over DDS and record what they publish.

Used by the demo and by ``vpr-ros evaluate --live``: every frame is stamped with its source
time, published as sensor_msgs/CompressedImage (or Image), and its descriptor, match and pose
prior are collected by stamp together with the wall-clock time each arrived. ``image_topic`` is
the topic itself: query_encoder's base topic + '/compressed' for its transport compressed.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseWithCovarianceStamped
from rclpy.executors import SingleThreadedExecutor
from rosgraph_msgs.msg import Clock

from vpr_ros.msg import Descriptor, PlaceMatch
from vpr_ros.nodes.conversions import rgb_to_compressed, rgb_to_image


@dataclasses.dataclass
class FrameRecord:
    """What came back for one published frame (times are wall-clock seconds)."""

    index: int
    stamp_ns: int
    t_published: float
    t_descriptor: Optional[float] = None
    t_match: Optional[float] = None
    inference_ms: Optional[float] = None
    match: Optional[PlaceMatch] = None
    prior: Optional[PoseWithCovarianceStamped] = None


def to_time(ns: int) -> Time:
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


class ReplayClient:
    """A test/evaluation client node: publishes camera frames, records the graph's outputs."""

    def __init__(self, image_topic: str = 'camera/image_raw/compressed', compressed: bool = True,
                 descriptor_topic: str = 'vpr/descriptor', match_topic: str = 'vpr/match',
                 pose_topic: str = 'vpr/pose_prior', publish_clock: bool = False,
                 frame_id: str = 'camera_optical'):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('vpr_replay', context=self.context)
        self.compressed, self.frame_id = compressed, frame_id
        msg_type = rgb_to_compressed(np.zeros((2, 2, 3), np.uint8)).__class__ if compressed \
            else rgb_to_image(np.zeros((2, 2, 3), np.uint8)).__class__
        self.pub = self.node.create_publisher(msg_type, image_topic, 10)
        self.clock_pub = self.node.create_publisher(Clock, '/clock', 10) if publish_clock else None
        self.records: Dict[int, FrameRecord] = {}
        self._stats_client = None  # query_encoder ~/stats (encoder_stats)
        self._lock = threading.Lock()
        self.node.create_subscription(Descriptor, descriptor_topic, self._on_descriptor, 50)
        self.node.create_subscription(PlaceMatch, match_topic, self._on_match, 50)
        self.node.create_subscription(PoseWithCovarianceStamped, pose_topic, self._on_prior, 50)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spin = threading.Thread(target=self.executor.spin, daemon=True)
        self._spin.start()

    @staticmethod
    def _ns(stamp) -> int:
        return stamp.sec * 1_000_000_000 + stamp.nanosec

    def _record(self, stamp) -> Optional[FrameRecord]:
        return self.records.get(self._ns(stamp))

    def _on_descriptor(self, msg) -> None:
        with self._lock:
            rec = self._record(msg.header.stamp)
            if rec is not None:
                rec.t_descriptor, rec.inference_ms = time.time(), float(msg.inference_ms)

    def _on_match(self, msg) -> None:
        with self._lock:
            rec = self._record(msg.header.stamp)
            if rec is not None:
                rec.t_match, rec.match = time.time(), msg

    def _on_prior(self, msg) -> None:
        with self._lock:
            rec = self._record(msg.header.stamp)
            if rec is not None:
                rec.prior = msg

    def wait_for_graph(self, timeout: float = 120.0, dead=None) -> None:
        """Block until the encoder subscribes to our images and the matcher publishes.

        ``dead`` (optional) returns the names of node processes that have exited; waiting
        stops with RuntimeError as soon as it returns any, instead of running out the timeout.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.node.count_subscribers(self.pub.topic_name) > 0
                    and self.node.count_publishers('vpr/match') > 0):
                return
            gone = dead() if dead is not None else None
            if gone:
                raise RuntimeError(f'node(s) {list(gone)} exited before the graph came up')
            time.sleep(0.1)
        raise TimeoutError(f'no subscriber on {self.pub.topic_name} after {timeout:.0f} s')

    def publish(self, index: int, stamp_ns: int, rgb: np.ndarray) -> None:
        msg = rgb_to_compressed(rgb) if self.compressed else rgb_to_image(rgb)
        msg.header.stamp, msg.header.frame_id = to_time(stamp_ns), self.frame_id
        if self.clock_pub is not None:
            self.clock_pub.publish(Clock(clock=to_time(stamp_ns)))
        with self._lock:
            self.records[stamp_ns] = FrameRecord(index, stamp_ns, time.time())
        self.pub.publish(msg)

    def play(self, frames: Iterable[Tuple[int, np.ndarray]], rate_hz: float = 10.0,
             drain_s: float = 5.0, on_frame=None) -> List[FrameRecord]:
        """Publish (stamp_ns, rgb) frames at ``rate_hz`` (0: as fast as possible)."""
        period = 1.0 / rate_hz if rate_hz > 0 else 0.0
        t_next = time.monotonic()
        for i, (stamp_ns, rgb) in enumerate(frames):
            t_next += period
            self.publish(i, int(stamp_ns), rgb)
            if on_frame is not None:
                on_frame(i)
            time.sleep(max(0.0, t_next - time.monotonic()))
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline:
            with self._lock:
                if all(r.t_match is not None for r in self.records.values()):
                    break
            time.sleep(0.05)
        return sorted(self.records.values(), key=lambda r: r.index)

    def encoder_stats(self, since: Optional[Dict] = None, timeout: float = 30.0) -> Dict:
        """query_encoder's ``~/stats`` counters (received, encoded, dropped, errors,
        no_place); with ``since`` (an earlier answer) only those five, counted from then on."""
        import json
        from std_srvs.srv import Trigger
        from vpr_ros.graph.service_call import call_service
        if self._stats_client is None:  # one client, matched once
            self._stats_client = self.node.create_client(Trigger, '/query_encoder/stats')
        # read-only: sent again if an answer is lost while DDS matches the client
        stats = json.loads(call_service(self._stats_client, Trigger.Request(), timeout,
                                        resend=True).message)
        if since is None:
            return stats
        return {k: stats.get(k, 0) - since.get(k, 0)
                for k in ('received', 'encoded', 'dropped', 'errors', 'no_place')}

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
