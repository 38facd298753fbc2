"""query_encoder node: camera images in, query descriptors out.

Image callbacks only park the newest frame in a one-slot mailbox; a worker thread decodes and
encodes it. When frames arrive faster than inference, the frame waiting in the slot is replaced
(and counted as dropped) so latency never queues up, and the executor stays free for other
callbacks (parameters, services, stats).
"""
from __future__ import annotations

import array
import collections
import functools
import json
import re
import threading
import time

import numpy as np
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_srvs.srv import Trigger

from vpr_ros.config import QueryEncoderConfig
from vpr_ros.msg import Descriptor
from vpr_ros.nodes.component import Component, run_component
from vpr_ros.nodes.conversions import (camera_info_summary, compressed_to_rgb, image_to_rgb,
                                       transport_topic)
from vpr_ros.nodes.diagnostics import ERROR, OK, WARN
from vpr_ros.query_pipeline import load_query_encoder, no_place_gate
from vpr_ros.verification.camera_k import camera_k_field


HEALTH_WINDOW_S = 5.0  # input rate, latency and errors in diagnostics are over this window


class QueryEncoder(Component):
    executor_threads = 1  # callbacks are serialised (mailbox / one callback group)

    def __init__(self, node, cfg: QueryEncoderConfig):
        super().__init__(node, cfg)
        self.topic = transport_topic(cfg.image_topic, cfg.transport)  # before the network loads
        self.encoder = load_query_encoder(cfg)
        self.gate = no_place_gate(self.encoder, cfg)  # a lens cap must not become a prior
        self.log.info(f'query network {self.encoder.name} ({self.encoder.dim}-d, backend '
                      f'{cfg.backend}) ready; ' + (
                          f'frames at cosine >= {self.gate.threshold:.2f} to a no-place frame '
                          'are dropped' if self.gate else 'no no-place gate'))
        self.pub = self.publisher(Descriptor, cfg.descriptor_topic, 10)
        self.local = self._local_extractor(cfg)  # the map's local features, for verification
        qos = image_qos(cfg.image_qos)
        # one transport only, as image_transport subscribers do: a camera publishing both raw
        # and compressed must not have each frame encoded (or counted as dropped) twice
        msg_type, to_rgb = (Image, image_to_rgb) if cfg.transport == 'raw' \
            else (CompressedImage, compressed_to_rgb)
        decode = functools.partial(to_rgb, max_pixels=cfg.max_image_pixels)
        if cfg.transport != 'raw' and self.local is None:  # local features want every pixel
            decode = functools.partial(decode, min_size=self.encoder.input_size)
        self.subscription(msg_type, self.topic, lambda m: self._offer(m, decode), qos)
        self.camera_info = None
        if cfg.camera_info_topic:
            # best effort matches reliable and best-effort drivers; only the latest is kept
            self.subscription(CameraInfo, cfg.camera_info_topic, self._on_camera_info,
                              qos_profile_sensor_data)
        self.log.info(f'images: {self.topic} ({cfg.transport})')
        self.service(Trigger, '~/stats', self._stats_cb)
        self.stats = {'received': 0, 'encoded': 0, 'dropped': 0, 'errors': 0, 'no_place': 0,
                      'last_inference_ms': 0.0}
        self._inference_ms_sum = 0.0
        self._health = collections.deque()  # (time, counters) snapshots over HEALTH_WINDOW_S
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
        if self.gate is not None and self._shows_no_place(msg, desc):
            return
        out = Descriptor()
        out.header = msg.header
        out.encoder = self.encoder.name
        out.descriptor = desc.astype('float32').tolist()
        if self.local is not None:  # for the matcher's geometric verification
            from vpr_ros.verification.wire import pack
            packed = pack(self.local.method, self.local(rgb))
            out.local_method = packed['local_method']
            out.keypoints = array.array('f', packed['keypoints'].tobytes())
            out.local_descriptors = array.array('B', packed['local_descriptors'])
            out.image_width, out.image_height = packed['image_width'], packed['image_height']
        # the camera's K, scaled to the decoded image (the one the keypoints are in)
        out.camera_k = camera_k_field(self.camera_info, (rgb.shape[1], rgb.shape[0]))
        out.inference_ms = (time.perf_counter() - t0) * 1e3
        self.stats['encoded'] += 1
        self.stats['last_inference_ms'] = round(out.inference_ms, 3)
        self._inference_ms_sum += out.inference_ms
        self.pub.publish(out)

    def _shows_no_place(self, msg, desc) -> bool:
        """True (frame counted and reported, not published) when ``desc`` is a no-place
        frame's: black, white, uniform, noise (vpr_ros.no_place)."""
        gated, sim, kind = self.gate.shows_no_place(desc)
        if gated:
            with self._cv:
                self.stats['no_place'] += 1
            self.log.warning(
                f'frame stamped {msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d} shows no '
                f'place (cosine {sim:.2f} to a {kind} frame; lens cap, blank view or a broken '
                f'camera?): not published ({self.stats["no_place"]} so far)',
                throttle_duration_sec=5.0)
        return gated

    def _local_extractor(self, cfg: QueryEncoderConfig):
        """The extractor of the map's local feature method (None: off, or no features)."""
        if not (cfg.local_features and cfg.map_path):
            return None
        from vpr_ros.mapstore.manifest import MapError
        from vpr_ros.verification.features import FeatureExtractor
        from vpr_ros.verification.store import read_header
        try:
            header = read_header(cfg.map_path)
        except MapError as exc:
            self.log.warning(f'no local features sent: {exc}')
            return None
        if header is None:
            return None
        self.log.info(f'local features: {header["method"]}, {cfg.local_keypoints} per frame')
        return FeatureExtractor(header['method'], cfg.local_keypoints)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.camera_info = camera_info_summary(msg)

    def _stats_cb(self, _req, resp):
        resp.success = True
        out = dict(self.stats)
        if self.cfg.camera_info_topic:
            out['camera_info'] = self.camera_info
        resp.message = json.dumps(out)
        return resp

    def shutdown(self) -> None:
        with self._cv:
            self._running = False
            self._cv.notify()
        self._worker.join(timeout=5.0)
        super().shutdown()

    def diagnostics(self):
        """Input rate, encode latency, drops and errors over the last HEALTH_WINDOW_S."""
        now = time.monotonic()
        with self._cv:
            counters = dict(self.stats, inference_ms_sum=self._inference_ms_sum)
        self._health.append((now, counters))
        while len(self._health) > 2 and now - self._health[1][0] >= HEALTH_WINDOW_S:
            self._health.popleft()
        t0, old = self._health[0]
        span = max(now - t0, 1e-6)
        d = {k: counters[k] - old[k]
             for k in ('received', 'encoded', 'dropped', 'errors', 'no_place')}
        latency = (counters['inference_ms_sum'] - old['inference_ms_sum']) / d['encoded'] \
            if d['encoded'] else None
        values = {'topic': self.topic, 'transport': self.cfg.transport,
                  'input_hz': round(d['received'] / span, 2) if len(self._health) > 1 else 0.0,
                  'window_s': round(span, 1),
                  'encode_ms': round(latency, 2) if latency is not None else '',
                  'last_inference_ms': counters['last_inference_ms'],
                  **{k: counters[k]
                     for k in ('received', 'encoded', 'dropped', 'errors', 'no_place')}}
        if self.camera_info is not None:
            values.update(camera_width=self.camera_info['width'],
                          camera_height=self.camera_info['height'])
        if counters['received'] == 0:
            return WARN, f'waiting for images on {self.topic}', values
        if d['errors'] and not d['encoded']:
            return ERROR, f'every frame failed in the last {span:.0f} s (see the log)', values
        if d['received'] == 0 and span >= 1.0:
            return WARN, f'no images on {self.topic} for {span:.0f} s', values
        if d['errors']:
            return WARN, f'{d["errors"]} frames failed in the last {span:.0f} s', values
        if d['no_place'] and d['no_place'] >= d['encoded']:  # encoded: the published ones
            return WARN, (f'{d["no_place"]} of {d["no_place"] + d["encoded"]} frames showed '
                          f'no place in the last {span:.0f} s (lens cap, blank view?)'), values
        return OK, f'encoding at {d["encoded"] / span:.1f} Hz', values


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
