"""Fuzz the running graph over DDS: thousands of garbled images, compressed images, descriptors
and hostile service calls (fixed seed, bounded sizes); no node may die or balloon, and a real
frame still localizes afterwards."""
import array
import json
import math
import threading
import time

import numpy as np
import psutil
import pytest
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose, PoseWithCovarianceStamped
from sensor_msgs.msg import CompressedImage, Image
from std_srvs.srv import Trigger

from node_fixtures import build_test_map, place_images, write_params
from ros_harness import NodeProcess, RosClient, stop_all, wait_for, wait_started
from test_hostile_inputs import jpeg_bomb, png_bomb
from vpr_ros.imaging import encode_compressed
from vpr_ros.msg import Descriptor, Keyframe, PlaceMatch
from vpr_ros.nodes.conversions import rgb_to_image
from vpr_ros.srv import AddPlaces, MergeMap, QueryMap, SaveMap

N_TOPIC = 2000           # messages per topic class
N_CALLS = 150            # calls per service
MAX_BYTES = 48 << 10     # data of one fuzzed image message
RSS_LIMIT_MB = 1536
ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16', '16UC1', 'yuv422', 'bayer_rggb8',
             '32FC1', '', 'rgb8\x00', 'x' * 300)


@pytest.fixture(scope='module')
def graph(tmp_path_factory, test_model):
    model, size = test_model
    tmp = tmp_path_factory.mktemp('fuzz')
    images = place_images(4, seed=11)
    descs = build_test_map(tmp / 'maps' / 'map', model, size, images)
    params = write_params(tmp / 'params.yaml', model, size, tmp / 'maps' / 'map',
                          query_encoder_jpeg={'transport': 'compressed',
                                              'input_size': list(size)})  # no YAML alias
    nodes = {exe: NodeProcess(exe, params, tmp) for exe in
             ('gallery_server', 'query_encoder', 'matcher')}
    nodes['query_encoder_jpeg'] = NodeProcess('query_encoder', params, tmp,
                                              name='query_encoder_jpeg')
    client = RosClient('fuzz_client')
    g = {'images': images, 'descs': descs, 'model': model, 'nodes': nodes, 'client': client,
         'matches': client.collect(PlaceMatch, 'vpr/match'),
         'priors': client.collect(PoseWithCovarianceStamped, 'vpr/pose_prior'),
         'raw': client.node.create_publisher(Image, 'camera/image_raw', 10),
         'jpeg': client.node.create_publisher(CompressedImage, 'camera/image_raw/compressed',
                                              10),
         'desc': client.node.create_publisher(Descriptor, 'vpr/descriptor', 10)}
    wait_started(nodes, ('query_encoder', 'query_encoder_jpeg'), ('matcher',))
    wait_for(lambda: client.node.count_subscribers('camera/image_raw') > 0
             and client.node.count_subscribers('camera/image_raw/compressed') > 0
             and client.node.count_subscribers('vpr/descriptor') > 0, 30, what='discovery')
    yield g
    stop_all(client, nodes)


def _bytes(rng, n):
    return array.array('B', rng.integers(0, 256, int(n), dtype=np.uint8).tobytes())


def _floats(values):
    return array.array('f', np.asarray(values, np.float32).tobytes())


def fuzz_image(rng):
    h, w = (int(v) for v in rng.integers(0, 5000, 2))
    if rng.random() < 0.3:
        h, w = (int(v) for v in rng.integers(1, 64, 2))  # small enough to be plausible
    step = int(rng.choice([w * 3, w, w * 4 + 1, 0, 2 ** 32 - 1, int(rng.integers(0, 2 ** 32))]))
    n = min(MAX_BYTES, h * step if rng.random() < 0.5 else int(rng.integers(0, MAX_BYTES)))
    return Image(height=h, width=w, encoding=str(rng.choice(ENCODINGS)), step=step,
                 is_bigendian=int(rng.integers(0, 2)), data=_bytes(rng, max(n, 0)))


def fuzz_compressed(rng, seeds):
    kind = int(rng.integers(0, 5))
    fmt = str(rng.choice(['jpeg', 'png', 'rgb8; jpeg compressed bgr8', '', 'tiff', 'x' * 300]))
    if kind == 0:
        data = _bytes(rng, rng.integers(0, MAX_BYTES)).tobytes()
    elif kind in (1, 2):  # a real image cut short, or with bytes flipped
        data = bytearray(seeds[int(rng.integers(0, len(seeds)))])
        if kind == 1:
            data = data[:int(rng.integers(0, len(data)))]
        else:
            for i in rng.integers(0, len(data), 8):
                data[int(i)] = int(rng.integers(0, 256))
    elif kind == 3:
        data = jpeg_bomb(*(int(v) for v in rng.integers(1, 65535, 2)))
    else:
        data = png_bomb()
    return CompressedImage(format=fmt, data=array.array('B', bytes(data)))


def fuzz_descriptor(rng, dim, model):
    n = int(rng.choice([0, 1, dim - 1, dim, dim + 1, int(rng.integers(0, 20000))]))
    d = rng.standard_normal(n).astype(np.float32)
    kind = int(rng.integers(0, 5))
    if kind == 0 and n:
        d[rng.integers(0, n, 3)] = rng.choice([np.nan, np.inf, -np.inf], 3)
    elif kind == 1:
        d[:] = 0.0
    elif kind == 2:
        with np.errstate(over='ignore'):
            d *= np.float32(3e38)
    enc = str(rng.choice([model, model, '', 'stranger', 'x' * 1000]))
    return Descriptor(encoder=enc, descriptor=_floats(d))


def _keyframe(rng, dim, model):
    bad = int(rng.integers(0, 6))
    d = rng.standard_normal(int(rng.choice([dim, dim - 1, 0, 5000]))).astype(np.float32)
    kf = Keyframe(robot_id='r' * int(rng.choice([1, 300])), session='s', encoder=str(
        rng.choice([model, 'stranger'])), descriptor=_floats(d), latitude=math.nan,
        longitude=math.nan)
    kf.header.frame_id = 'odom' if bad == 0 else 'map'
    kf.pose = Pose()
    kf.pose.position.x = [1e308, math.nan, 5.0, 5.0, math.inf, 5.0][bad]
    kf.pose.orientation.w = 0.0 if bad == 3 else 1.0
    if bad == 5:
        kf.latitude, kf.longitude = 91.0, 0.0
        d[:] = np.nan
        kf.descriptor = _floats(d)
    if bad in (2, 3) and rng.random() < 0.5:
        kf.image = CompressedImage(format='jpeg', data=array.array('B', jpeg_bomb()))
        kf.descriptor = _floats([])
    return kf


PATHS = ('', '..', '../..', '/', '/etc', '/tmp/fuzz_out', 'a\x00b', 'x' * 5000, 'map/inner',
         'map', 'no_such_map', '../maps/map/../../x', '\n', '~/x', '/proc/self')


def fuzz_requests(rng, dim, model):
    """(service type, name, request) of the hostile service calls, shuffled."""
    calls = []
    for i in range(N_CALLS):
        kfs = [_keyframe(rng, dim, model) for _ in range(int(rng.integers(0, 4)))]
        calls.append((AddPlaces, 'vpr/add_places', AddPlaces.Request(
            keyframes=kfs, deduplicate=bool(rng.integers(0, 2)),
            request_id=str(rng.choice(['', f'fuzz{i}', 'k' * 400])))))
        n = int(rng.choice([0, dim - 1, dim, 3000]))
        q = rng.standard_normal(n).astype(np.float32)
        if rng.random() < 0.5 and n:
            q[0] = rng.choice([np.nan, np.inf])
        calls.append((QueryMap, 'vpr/query_map', QueryMap.Request(
            descriptor=_floats(q), k=int(rng.choice([0, -1 % 2 ** 31, 2 ** 31 - 1, 1001])),
            encoder=str(rng.choice(['', 'stranger', 'y' * 1000])))))
        calls.append((SaveMap, 'vpr/save_map', SaveMap.Request(
            path=str(rng.choice(PATHS[1:])))))
        calls.append((MergeMap, 'vpr/merge_map', MergeMap.Request(
            path=str(rng.choice(PATHS)), deduplicate=bool(rng.integers(0, 2)))))
    rng.shuffle(calls)
    return calls


class RssWatch:
    """Samples each node's RSS (psutil) in a thread; ``peak_mb`` per node."""

    def __init__(self, nodes):
        self.procs = {name: psutil.Process(n.proc.pid) for name, n in nodes.items()}
        self.peak_mb = {name: 0.0 for name in nodes}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.2):
            for name, p in self.procs.items():
                try:
                    self.peak_mb[name] = max(self.peak_mb[name], p.memory_info().rss / 2 ** 20)
                except psutil.Error:
                    pass

    def stop(self):
        self._stop.set()
        self._thread.join()


def _stats(client, name):
    return json.loads(client.call(Trigger, f'{name}/stats', Trigger.Request()).message)


def test_fuzzed_graph_survives_and_still_localizes(graph):
    g, client, t0 = graph, graph['client'], time.monotonic()
    rng = np.random.default_rng(20240607)
    dim = g['descs'].shape[1]
    before = {n: _stats(client, n) for n in ('query_encoder', 'query_encoder_jpeg')}
    start_mb = {n: round(psutil.Process(p.proc.pid).memory_info().rss / 2 ** 20)
                for n, p in g['nodes'].items()}
    seeds = [encode_compressed(img, fmt) for img in g['images'][:2] for fmt in ('jpeg', 'png')]
    watch = RssWatch(g['nodes'])
    sent = {'image': 0, 'compressed': 0, 'descriptor': 0, 'service': 0}
    try:
        for i in range(N_TOPIC):
            g['raw'].publish(fuzz_image(rng))
            g['jpeg'].publish(fuzz_compressed(rng, seeds))
            g['desc'].publish(fuzz_descriptor(rng, dim, g['model']))
            sent['image'] += 1
            sent['compressed'] += 1
            sent['descriptor'] += 1
            if i % 10 == 0:
                time.sleep(0.01)  # let DDS deliver most: depth-10 queues keep only the last
        t_topics, futures = time.monotonic() - t0, []
        for srv, name, req in fuzz_requests(rng, dim, g['model']):
            cl = client.node.create_client(srv, name) if name not in g else g[name]
            g[name] = cl
            wait_for(lambda: cl.wait_for_service(timeout_sec=0.2), 30, what=name)
            # a service keeps the last 10 requests (default QoS): at most 8 in flight
            wait_for(lambda: sum(not f.done() for f in futures) < 8, 60, what=f'{name} answer')
            futures.append(cl.call_async(req))
            sent['service'] += 1
        wait_for(lambda: all(f.done() for f in futures), 60, what='service answers')
        answers = [f.result() for f in futures]
        assert sum(a.success for a in answers) < len(answers) // 4  # nearly all refused
        # afterwards a real frame still localizes to the right place
        frame = rgb_to_image(g['images'][2])
        frame.header.stamp = Time(sec=4242)
        wait_for(lambda: g['raw'].publish(frame) or any(
            p.header.stamp.sec == 4242 for p in g['priors']), 60, period=0.5,
            what='a real frame localized after the fuzzing')
    finally:
        watch.stop()
    deaths = [n for n, node in g['nodes'].items() if not node.alive()]
    prior = next(p for p in g['priors'] if p.header.stamp.sec == 4242)
    match = next(m for m in g['matches'] if m.header.stamp.sec == 4242)
    after = {n: _stats(client, n) for n in before}
    moved = {n: {k: after[n][k] - before[n][k] for k in ('received', 'dropped', 'errors')}
             for n in before}
    print(f'\nFUZZ SUMMARY: sent {sent}, deaths {len(deaths)} {deaths}, peak RSS MB '
          f'{ {n: round(v) for n, v in watch.peak_mb.items()} } (at start {start_mb}), '
          f'encoders {moved}, {t_topics:.0f} s topics, {time.monotonic() - t0:.0f} s in all')
    assert not deaths, {n: g['nodes'][n].log()[-3000:] for n in deaths}
    assert all(v < RSS_LIMIT_MB for v in watch.peak_mb.values()), watch.peak_mb
    assert match.candidates[0].place_id == 2
    assert prior.pose.pose.position.x == pytest.approx(60.0, abs=1.0)
    assert all(moved[n]['errors'] > 0 for n in before), moved
