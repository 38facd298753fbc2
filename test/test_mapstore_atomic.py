"""Atomic saves: a writer killed mid-save and readers during saves never see a broken map."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

from vpr_ros.mapstore import MapStore, PlaceRecord
from vpr_ros.mapstore.persist import SAVE_DELAY_ENV

WRITER = textwrap.dedent('''
    import sys, numpy as np
    from vpr_ros.mapstore import MapStore, PlaceRecord
    store = MapStore.open(sys.argv[1], writable=True)
    for r in range(int(sys.argv[2])):
        x = np.random.default_rng(r).standard_normal((50, 16)).astype(np.float32)
        store.add(x, [PlaceRecord(x=float(i), y=float(r)) for i in range(50)])
        store.save()
        print('saved', store.num_places, flush=True)
''')


def _seed_map(path, n=100):
    s = MapStore.create(path, 'enc', 16, dtype='float32')
    x = np.random.default_rng(99).standard_normal((n, 16)).astype(np.float32)
    s.add(x, [PlaceRecord(x=float(i), y=0.0) for i in range(n)])
    s.save()
    version = s.version
    s.close()
    return version


def _writer(path, rounds, delay):
    env = dict(os.environ, **{SAVE_DELAY_ENV: str(delay)})
    return subprocess.Popen([sys.executable, '-c', WRITER, str(path), str(rounds)], env=env,
                            stdout=subprocess.PIPE, text=True)


def test_writer_killed_mid_save_leaves_previous_version(tmp_path):
    path = tmp_path / 'm'
    version = _seed_map(path)
    proc = _writer(path, 1, delay=30)
    deadline = time.time() + 60
    while not (path / 'descriptors-v3.npy').exists():  # first file of the new version
        assert time.time() < deadline and proc.poll() is None, 'writer never started saving'
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = MapStore.open(path)  # validates manifest, checksums, shapes, place count
    assert store.version == version and store.num_places == 100
    store.close()
    w = MapStore.open(path, writable=True)  # cleans up the orphaned half version
    assert not (path / 'descriptors-v3.npy').exists()
    w.add(np.ones((1, 16), np.float32), [PlaceRecord(x=1.0, y=1.0)])
    w.save()
    assert MapStore.open(path).num_places == 101


def test_reader_during_saves_sees_only_complete_versions(tmp_path):
    path = tmp_path / 'm'
    _seed_map(path)
    proc = _writer(path, 3, delay=0.3)
    reader = MapStore.open(path)
    seen = set()
    q = np.random.default_rng(5).standard_normal((1, 16)).astype(np.float32)
    while proc.poll() is None:
        fresh = MapStore.open(path)  # full validation on every open
        assert fresh.num_places in (100, 150, 200, 250)
        assert fresh.descriptors_of(np.arange(fresh.num_places)).shape[0] == fresh.num_places
        fresh.close()
        reader.reload_if_changed()
        seen.add(reader.num_places)
        _, ids = reader.search(q, 3)
        assert ids.max() < reader.num_places
        time.sleep(0.05)
    assert proc.returncode == 0
    reader.reload_if_changed()
    assert reader.num_places == 250 and len(seen) >= 2
