"""query_encoder node: camera images in, query descriptors out.

Image callbacks only park the newest frame in a one-slot mailbox; a worker thread decodes and
encodes it. When frames arrive faster than inference, the frame waiting in the slot is replaced
(and counted as dropped) so latency never queues up, and the executor stays free for other
callbacks (parameters, services, stats).
"""
from __future__ import annotations

import functools
import json
import re
import threading
import time

import numpy as np
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_srvs.srv import Trigger

from vpr_ros.config import QueryEncoderConfig
from vpr_ros.msg import Descriptor
from vpr_ros.nodes.component import Component, run_component
from vpr_ros.nodes.conversions import compressed_to_rgb, image_to_rgb
from vpr_ros.query_pipeline import load_query_encoder


class QueryEncoder(Component):
    executor_threads = 1  # callbacks are serialised (mailbox / one callback group)

    def __init__(self, node, cfg: QueryEncoderConfig):
        super().__init__(node, cfg)
        self.encoder = load_query_encoder(cfg)
        self.log.info(f'query network {self.encoder.name} ({self.encoder.dim}-d, backend '
                      f'{cfg.backend}) ready')
        self.pub = self.publisher(Descriptor, cfg.descriptor_topic, 10)
        qos = image_qos(cfg.image_qos)
        raw = functools.partial(image_to_rgb, max_pixels=cfg.max_image_pixels)
        compressed = functools.partial(compressed_to_rgb, max_pixels=cfg.max_image_pixels)
        if cfg.image_topic:
            self.subscription(Image, cfg.image_topic, lambda m: self._offer(m, raw), qos)
        if cfg.compressed_topic:
            self.subscription(CompressedImage, cfg.compressed_topic,
                              lambda m: self._offer(m, compressed), qos)
        self.service(Trigger, '~/stats', self._stats_cb)
        self.stats = {'received': 0, 'encoded': 0, 'dropped': 0, 'errors': 0,
                      'last_inference_ms': 0.0}
        self._slot = None
        self._error_kinds = set()
        self._cv = threading.Condition()
        self._running = True
        self._worker = threading.Thread(target=self._work, name='encoder', daemon=True)
        self._worker.start()

    def _offer(self, msg, decode) -> None:
        if not self.active:
            return
        with self._cv:
            self.stats['received'] += 1
            if self._slot is not None:
                self.stats['dropped'] += 1
            self._slot = (msg, decode)
            self._cv.notify()

    def _work(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._slot is not None or not self._running)
                if not self._running:
                    return
                msg, decode = self._slot
                self._slot = None
            try:  # whatever one frame does, the worker lives on to encode the next one
                self._encode_and_publish(msg, decode)
            except Exception as exc:
                self._frame_failed(msg, exc)

    def _frame_failed(self, msg, exc: Exception) -> None:
        with self._cv:
            self.stats['errors'] += 1
        stamp = f'{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}'
        text = (f'dropping frame stamped {stamp} ({self.stats["errors"]} errors so far): '
                f'{type(exc).__name__}: {exc}')
        # each new kind of problem is reported at once, repeats at most every 5 s
        kind = (type(exc).__name__, re.sub(r'[0-9]+', '#', str(exc))[:120])
        if kind not in self._error_kinds and len(self._error_kinds) < 32:
            self._error_kinds.add(kind)
            self.log.error(text)
        else:
            self.log.error(text, throttle_duration_sec=5.0)

    def _encode_and_publish(self, msg, decode) -> None:
        t0 = time.perf_counter()
        rgb = decode(msg)
        desc = self.encoder.encode(rgb)[0]
        if not np.all(np.isfinite(desc)):
            raise ValueError('the query network produced NaN or infinite values')
        out = Descriptor()
        out.header = msg.header
        out.encoder = self.encoder.name
        out.descriptor = desc.astype('float32').tolist()
        out.inference_ms = (time.perf_counter() - t0) * 1e3
        self.stats['encoded'] += 1
        self.stats['last_inference_ms'] = round(out.inference_ms, 3)
        self.pub.publish(out)

    def _stats_cb(self, _req, resp):
        resp.success = True
        resp.message = json.dumps(self.stats)
        return resp

    def shutdown(self) -> None:
        with self._cv:
            self._running = False
            self._cv.notify()
        self._worker.join(timeout=5.0)
        super().shutdown()


def image_qos(name: str):
    """Camera subscription QoS: SensorDataQoS (best effort, depth 5: what drivers publish) or
    reliable depth 5, for replays that must not lose frames in the middleware."""
    if name == 'sensor_data':
        return qos_profile_sensor_data
    if name == 'reliable':
        return QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    raise ValueError(f'image_qos {name!r}: use sensor_data or reliable')


def main(args=None) -> None:
    run_component('query_encoder', QueryEncoder, QueryEncoderConfig, args)


if __name__ == '__main__':
    main()
