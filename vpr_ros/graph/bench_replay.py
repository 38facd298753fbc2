"""The benchmark's camera: a ReplayClient that publishes pre-encoded JPEG frames at a fixed
rate (encoding is not charged to the graph) and also records when each pose prior arrived.

Imports rclpy (through vpr_ros.graph.replay): ``bench_graph`` imports it only when it runs.
"""
from __future__ import annotations

import time
from typing import List, Tuple

from sensor_msgs.msg import CompressedImage

from vpr_ros.graph.replay import FrameRecord, ReplayClient, to_time
from vpr_ros.imaging import encode_compressed


def bench_client(images, quality: int = 90, **kw):
    """A started BenchClient publishing ``images`` (uint8 RGB) in a loop."""
    return BenchClient(images, quality, **kw)


class BenchClient(ReplayClient):
    """Publishes ``images`` in a loop as sensor_msgs/CompressedImage."""

    def __init__(self, images, quality: int = 90, **kw):
        super().__init__(compressed=True, **kw)
        self._msgs = []
        for rgb in images:
            msg = CompressedImage(format='jpeg')
            msg.data = encode_compressed(rgb, 'jpeg', quality)
            msg.header.frame_id = self.frame_id
            self._msgs.append(msg)
        self._count = 0
        self.late_skipped = 0  # camera slots this process missed (see play_for)

    def _on_prior(self, msg) -> None:
        with self._lock:
            rec = self._record(msg.header.stamp)
            if rec is not None:
                rec.prior, rec.t_prior = msg, time.time()

    def reset(self) -> None:
        """Forget the frames published so far."""
        with self._lock:
            self.records = {}
        self.late_skipped = 0

    def publish_next(self) -> None:
        msg = self._msgs[self._count % len(self._msgs)]
        stamp_ns = time.time_ns()
        msg.header.stamp = to_time(stamp_ns)
        rec = FrameRecord(self._count, stamp_ns, 0.0)
        rec.t_prior = None
        with self._lock:
            self.records[stamp_ns] = rec
        rec.t_published = time.time()
        self.pub.publish(msg)
        self._count += 1

    def play_for(self, seconds: float, rate_hz: float,
                 drain_s: float = 2.0) -> Tuple[List[FrameRecord], float]:
        """Publish at ``rate_hz`` for ``seconds``, wait up to ``drain_s`` for the last priors;
        (records, seconds spent publishing). A slot this process reaches more than a period
        late (it was descheduled) is skipped and counted in ``late_skipped``, as a camera
        loses a frame, rather than published in a burst with the next ones."""
        import gc
        period, t0 = 1.0 / rate_hz, time.monotonic()
        t_next = t0
        gc.disable()  # a collection in this process would stall the camera, not the nodes
        try:
            while time.monotonic() - t0 < seconds:
                if time.monotonic() - t_next > period:  # this process fell a slot behind:
                    self.late_skipped += 1             # like a camera, skip it, no burst
                else:
                    self.publish_next()
                t_next += period
                time.sleep(max(0.0, t_next - time.monotonic()))
        finally:
            gc.enable()
        play_s = time.monotonic() - t0
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline:
            with self._lock:
                if all(getattr(r, 't_prior', None) is not None for r in self.records.values()):
                    break
            time.sleep(0.02)
        with self._lock:
            recs = sorted(self.records.values(), key=lambda r: r.index)
        return recs, play_s
