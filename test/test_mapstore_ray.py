"""build-map on Ray: same map as the local build, actor and driver faults, shard merge, and the
gallery feature cache's Ray executor. One local 2-CPU Ray cluster for the whole file."""
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from vpr_ros.cli import main
from vpr_ros.mapstore import MapStore
from vpr_ros.mapstore.build import build_map, BuildConfig
from vpr_ros.mapstore.dedup import DedupConfig

ray = pytest.importorskip('ray', reason='Ray is not installed (pip install ray, see '
                                        'requirements.txt)')
pytestmark = pytest.mark.timeout(120)
MODEL, SIZE = 'efficientnet_lite0_gem', (96, 96)
BASE = dict(model=MODEL, source='vg', input_size=SIZE, batch_size=2, progress=False)


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp('ray')
    assert main(['world', '--seed', '5', '--out', str(root / 'T'), '--places', '12',
                 '--conditions', 'day', '--formats', 'vg', '--size', '160x120', '--quiet']) == 0
    vg = root / 'T' / 'test'
    local = build_map(BuildConfig(input=str(vg), out=str(root / 'local'), **BASE))
    assert local['places'] == 12
    ray.init(address='local', num_cpus=2, include_dashboard=False, configure_logging=False,
             log_to_driver=False)  # a private cluster, whatever else runs on the machine
    yield root, vg
    ray.shutdown()


def _records(path):
    """(x, y, yaw, lat, lon) rows and descriptors of a map, sorted by position."""
    with MapStore.open(path) as s:
        ids = np.arange(s.num_places)
        geo = np.array([[p.x, p.y, p.yaw, p.lat, p.lon] for p in s.get_places(ids)])
        order = np.lexsort((geo[:, 1], geo[:, 0]))
        return geo[order], s.descriptors_of(ids)[order]


def _same_map(a, b):
    ga, da = _records(a)
    gb, db = _records(b)
    assert ga.shape == gb.shape
    np.testing.assert_allclose(ga, gb, atol=1e-3)  # merged shards: converted between frames
    np.testing.assert_allclose(da, db, atol=2e-3)  # float16 storage


def test_ray_build_survives_a_killed_actor(world):
    root, vg = world
    killed = []

    def kill_one(done):
        if not killed:
            names = sorted(n['name'] if isinstance(n, dict) else n
                           for n in ray.util.list_named_actors())
            actor = ray.get_actor([n for n in names if n.startswith('vpr_ros_build_')][0])
            pid = ray.get(actor.info.remote())[2]
            ray.kill(actor, no_restart=False)  # its queued batches must be re-run
            killed.append(pid)

    summary = build_map(BuildConfig(input=str(vg), out=str(root / 'fault'), executor='ray',
                                    workers=2, checkpoint_every=2, **BASE),
                        on_checkpoint=kill_one)
    assert killed and summary['places'] == summary['images_encoded_now'] == 12
    _same_map(root / 'local', root / 'fault')


def test_ray_build_resumes_after_the_driver_is_killed(world):
    root, vg = world
    out = root / 'resumed'
    cmd = [sys.executable, '-m', 'vpr_ros.cli', 'build-map', '--model', MODEL, '--input',
           str(vg), '--out', str(out), '--input-size', '96', '96', '--batch-size', '1',
           '--checkpoint-every', '2', '--executor', 'ray', '--ray-address', 'auto',
           '--workers', '1', '--no-progress']
    env = {**os.environ, 'RAY_ADDRESS': ray.get_runtime_context().gcs_address}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 60
    while time.time() < deadline and not list((out / 'work').glob('chunk-0000[01].npz')):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    chunks = len(list((out / 'work').glob('chunk-?????.npz')))
    assert 1 <= chunks < 6, 'the driver should be killed mid-build'
    summary = build_map(BuildConfig(input=str(vg), out=str(out), executor='ray', workers=2,
                                    checkpoint_every=2, **{**BASE, 'batch_size': 1}))
    assert summary['images_resumed'] >= 2 and summary['places'] == 12
    assert summary['images_resumed'] + summary['images_encoded_now'] == 12
    _same_map(root / 'local', out)


def test_overlapping_shards_merge_into_the_one_shot_map(world):
    root, vg = world
    files = sorted((vg / 'database').iterdir())
    for name, part in (('a', files[:8]), ('b', files[5:])):  # 3 images in both shards
        (root / f'shard_{name}' / 'database').mkdir(parents=True)
        for f in part:
            shutil.copy(f, root / f'shard_{name}' / 'database' / f.name)
    build_map(BuildConfig(input=str(root / 'shard_a'), out=str(root / 'map_a'), **BASE))
    build_map(BuildConfig(input=str(root / 'shard_b'), out=str(root / 'map_b'),
                          executor='ray', workers=2, **BASE))
    with MapStore.open(root / 'map_a', writable=True) as store:
        added, skipped = store.merge(root / 'map_b', dedup=DedupConfig())
        store.save()
    assert (added, skipped) == (4, 3)
    _same_map(root / 'local', root / 'map_a')


def test_gallery_features_on_ray_equal_local(world):
    from vpr_ros.mapstore.build_encoders import load_model
    from vpr_ros.training.gallery_cache import extract_features
    _, vg = world
    paths = [str(p) for p in sorted((vg / 'database').iterdir())[:5]]
    model = load_model(BuildConfig(model=MODEL))
    local = extract_features(model, paths, batch_size=2, input_size=SIZE, progress=False)
    remote = extract_features(model, paths, batch_size=2, input_size=SIZE, progress=False,
                              executor='ray', workers=2)
    np.testing.assert_allclose(remote, local, atol=1e-5)
