"""Hostile inputs refused by the pure core: image bombs, out-of-range poses, bad descriptors,
escaping paths and maps whose manifest points outside themselves."""
import json
import math
import os
import threading
import time
import tracemalloc
import types

import numpy as np
import pytest

from vpr_ros import imaging, validation
from vpr_ros.imaging import ImageDecodeError
from vpr_ros.validation import InputError


def jpeg_bomb(width=65500, height=65500) -> bytes:
    """A valid small JPEG whose frame header claims ``width`` x ``height``."""
    img = np.random.default_rng(0).integers(0, 255, (8, 8, 3)).astype(np.uint8)
    data = bytearray(imaging.encode_compressed(img, 'jpeg', 50))
    i = data.index(b'\xff\xc0')
    data[i + 5:i + 7] = height.to_bytes(2, 'big')
    data[i + 7:i + 9] = width.to_bytes(2, 'big')
    return bytes(data)


def png_bomb() -> bytes:
    data = bytearray(imaging.encode_compressed(np.zeros((4, 4, 3), np.uint8), 'png'))
    data[16:24] = (100000).to_bytes(4, 'big') + (100000).to_bytes(4, 'big')
    return bytes(data)


# -- images ---------------------------------------------------------------------------------
@pytest.mark.parametrize('data', [jpeg_bomb(), png_bomb()], ids=['jpeg', 'png'])
def test_compressed_bomb_refused_from_its_header(data):
    with pytest.raises(ImageDecodeError, match='over the budget'):
        imaging.decode_compressed('jpeg', data)


def test_header_sizes_and_budget_admit_4k():
    rgb = np.zeros((2160, 3840, 3), np.uint8)
    for fmt in ('jpeg', 'png'):
        data = imaging.encode_compressed(rgb, fmt)
        assert imaging.compressed_size(data) == (3840, 2160)
        assert imaging.decode_compressed(fmt, data).shape == (2160, 3840, 3)
    with pytest.raises(ImageDecodeError, match='budget'):
        imaging.decode_compressed('png', data, max_pixels=1000)


def test_jpeg_without_a_frame_header_is_refused():
    with pytest.raises(ImageDecodeError, match='no image size'):
        imaging.decode_compressed('jpeg', b'\xff\xd8\xff\xda\x00\x02' + b'\x00' * 40 + b'\xff\xd9')


def test_raw_image_with_a_huge_step_allocates_nothing():
    """16 bytes, height 1, step 2**32-1: used to be padded to 4 GB and decoded."""
    tracemalloc.start()
    try:
        with pytest.raises(ImageDecodeError, match='larger than the 16 bytes'):
            imaging.decode_raw('rgb8', 1, 4, 4294967295, b'\x01' * 16)
        with pytest.raises(ImageDecodeError, match='budget'):
            imaging.decode_raw('mono8', 70000, 70000, 70000, b'\x00' * 64)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_raw_layout_checks_in_the_node_conversion():
    from sensor_msgs.msg import Image
    from vpr_ros.nodes.conversions import image_to_rgb, rgb_to_image
    msg = Image(height=1, width=4, encoding='rgb8', step=4294967295, data=b'\x01' * 16)
    with pytest.raises(ImageDecodeError, match='larger than the 16 bytes'):
        image_to_rgb(msg)
    msg.step, msg.height = 12, 3
    with pytest.raises(ImageDecodeError, match='needs 36 bytes, got 16'):
        image_to_rgb(msg)
    good = rgb_to_image(np.full((6, 8, 3), 7, np.uint8), 'bgr8')
    assert image_to_rgb(good).shape == (6, 8, 3)
    with pytest.raises(ImageDecodeError, match='budget'):
        image_to_rgb(good, max_pixels=47)
    padded = imaging.decode_raw('mono8', 2, 3, 5, bytes([1, 2, 3, 0, 0, 4, 5, 6]))
    assert padded[..., 0].tolist() == [[1, 2, 3], [4, 5, 6]]  # last row unpadded


def test_query_encoder_worker_survives_any_exception():
    """The worker loop, without ROS: a frame whose decode raises anything is counted and
    logged, and the next frame is still encoded and published."""
    from vpr_ros.nodes.query_encoder import QueryEncoder
    logged, published = [], []
    qe = QueryEncoder.__new__(QueryEncoder)
    qe.node = types.SimpleNamespace(get_logger=lambda: types.SimpleNamespace(
        error=lambda text, **kw: logged.append((text, kw))))
    qe.encoder = types.SimpleNamespace(name='fake', encode=lambda rgb: np.ones((1, 4)))
    qe.pub = types.SimpleNamespace(publish=published.append)
    qe.stats = {'received': 0, 'encoded': 0, 'dropped': 0, 'errors': 0, 'no_place': 0,
                'last_inference_ms': 0.0}
    qe.gate = None  # no no-place gate (a network without a measured threshold)
    qe._slot, qe._error_kinds, qe._cv, qe._running = None, set(), threading.Condition(), True
    qe._inference_ms_sum = 0.0
    qe.local = None  # no map local features: descriptors only
    qe.camera_info = None  # no CameraInfo received: camera_k stays zeros
    worker = threading.Thread(target=qe._work, daemon=True)
    worker.start()
    from sensor_msgs.msg import Image

    def boom(_msg):
        raise MemoryError('cannot allocate 5 GB')
    for decode in (boom, boom, lambda _m: np.zeros((2, 2, 3), np.uint8)):
        with qe._cv:
            qe._slot = (Image(), decode)
            qe._cv.notify()
        deadline = time.monotonic() + 5
        while qe._slot is not None and time.monotonic() < deadline:
            time.sleep(0.01)
    deadline = time.monotonic() + 5
    while not published and time.monotonic() < deadline:
        time.sleep(0.01)
    with qe._cv:
        qe._running = False
        qe._cv.notify()
    worker.join(5)
    assert qe.stats['errors'] == 2 and qe.stats['encoded'] == 1 and len(published) == 1, logged
    assert 'MemoryError' in logged[0][0] and logged[0][1] == {}  # a new kind: at once
    assert logged[1][1] == {'throttle_duration_sec': 5.0}       # a repeat: throttled


# -- values ---------------------------------------------------------------------------------
def test_positions_quaternions_latlon_text_and_descriptors():
    validation.check_position(1e6, -1e6, 10.0)
    for bad in ((1e308, 0, 0), (0, math.nan, 0), (0, 0, math.inf), (2e7, 0, 0)):
        with pytest.raises(InputError, match='position'):
            validation.check_position(*bad)
    validation.check_quaternion(0, 0, 0.3, 0.2)
    for bad in ((0, 0, 0, 0), (0, 0, math.nan, 1), (1e-9, 0, 0, 0)):
        with pytest.raises(InputError, match='quaternion'):
            validation.check_quaternion(*bad)
    validation.check_latlon(45.0, 7.0)
    validation.check_latlon(math.nan, math.nan)
    for bad in ((91.0, 0.0), (0.0, -180.5), (math.inf, 0.0), (math.nan, 7.0)):
        with pytest.raises(InputError, match='latitude'):
            validation.check_latlon(*bad)
    validation.check_text('robot1', 'robot_id')
    with pytest.raises(InputError, match='at most 256'):
        validation.check_text('r' * 10000, 'robot_id')
    assert validation.check_descriptor([0.0, 2.0], 2).dtype == np.float32
    for values, why in (([0.0, 0.0], 'all zeros'), ([1.0], 'expects 2'),
                        ([1.0, math.nan], 'NaN')):
        with pytest.raises(InputError, match=why):
            validation.check_descriptor(values, 2)


def test_confined_paths(tmp_path):
    root = tmp_path / 'maps'
    (root / 'a').mkdir(parents=True)
    (tmp_path / 'outside').mkdir()
    os.symlink(tmp_path / 'outside', root / 'link')
    assert validation.confined_path(root, 'copy') == (root / 'copy').resolve()
    assert validation.confined_path(root, str(root / 'a' / 'b')) == (root / 'a' / 'b').resolve()
    for path, why in (('/etc/x', 'outside'), ('../x', r'"\.\."'), ('a/../../x', r'"\.\."'),
                      ('link/x', 'outside'), ('', 'empty'), ('a\x00b', 'NUL')):
        with pytest.raises(InputError, match=why):
            validation.confined_path(root, path)


# -- maps -----------------------------------------------------------------------------------
def _small_map(path):
    from vpr_ros.mapstore import MapStore, PlaceRecord
    s = MapStore.create(path, encoder='m', dim=4, dtype='float32')
    s.add(np.eye(4, dtype=np.float32)[:2], [PlaceRecord(x=1.0, y=0.0), PlaceRecord(x=2.0, y=0.0)])
    s.save()
    s.close()


def test_store_refuses_a_position_beyond_the_bound(tmp_path):
    from vpr_ros.mapstore import MapError, MapStore, PlaceRecord
    _small_map(tmp_path / 'map')
    with MapStore.open(tmp_path / 'map', writable=True) as s:
        with pytest.raises(MapError, match='position'):
            s.add(np.ones((1, 4)), [PlaceRecord(x=1e308, y=0.0)])
        assert s.num_places == 2


@pytest.mark.parametrize('how', ['dotdot', 'absolute', 'symlink'])
def test_map_whose_manifest_points_outside_is_refused(tmp_path, how):
    from vpr_ros.mapstore import MapError, MapStore
    _small_map(tmp_path / 'map')
    secret = tmp_path / 'secret.npy'
    mpath = tmp_path / 'map' / 'manifest.json'
    m = json.loads(mpath.read_text())
    name = m['files']['descriptors']['name']
    os.replace(tmp_path / 'map' / name, secret)
    if how == 'symlink':
        os.symlink(secret, tmp_path / 'map' / name)
    else:
        m['files']['descriptors']['name'] = '../secret.npy' if how == 'dotdot' else str(secret)
        mpath.write_text(json.dumps(m))
    with pytest.raises(MapError, match='outside the map directory|bare file name'):
        MapStore.open(tmp_path / 'map')
    _small_map(tmp_path / 'target')
    with MapStore.open(tmp_path / 'target', writable=True) as t:
        with pytest.raises(MapError, match='outside the map directory|bare file name'):
            t.merge(tmp_path / 'map')
        assert t.num_places == 2
