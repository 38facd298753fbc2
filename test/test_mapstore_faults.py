"""Map store faults without ROS: data files truncated or replaced under a loaded map,
idempotent adds by request id (kept across a reopen) and merging a map into itself."""
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from vpr_ros.mapstore import MapError, MapStore, PlaceRecord

DIM = 16


def _places(n, x0=0.0):
    return [PlaceRecord(x=x0 + i, y=0.0) for i in range(n)]


def _map(path, n=200, seed=0):
    s = MapStore.create(path, 'enc', DIM, dtype='float32')
    s.add(np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32), _places(n))
    s.save()
    return s


def _desc_file(store):
    return store.path / store.manifest['files']['descriptors']['name']


def _truncate(path, keep=200):
    with open(path, 'r+b') as f:
        f.truncate(keep)


def test_truncated_descriptor_file_is_a_map_error_not_sigbus(tmp_path):
    # in a child process: before the fix the save below died of SIGBUS
    code = textwrap.dedent(f'''
        import numpy as np
        from vpr_ros.mapstore import MapError, MapStore, PlaceRecord
        s = MapStore.create({str(tmp_path / 'm')!r}, 'enc', 16, dtype='float32')
        s.add(np.random.default_rng(0).standard_normal((3000, 16)).astype(np.float32),
              [PlaceRecord(x=float(i), y=0.0) for i in range(3000)])
        s.save()
        name = s.path / s.manifest['files']['descriptors']['name']
        with open(name, 'r+b') as f:
            f.truncate(200)
        for op in (lambda: s.add(np.ones((1, 16), np.float32), [PlaceRecord(x=1.0, y=1.0)]),
                   s.save, lambda: s.reindex('Flat'), lambda: s.descriptors_of([2999])):
            try:
                op()
            except MapError as exc:
                assert 'truncated' in str(exc), exc
            else:
                raise SystemExit('no MapError')
        print('refused', s.num_places)
    ''')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert 'refused 3000' in out.stdout


def test_restored_file_is_served_again_and_unsaved_places_kept(tmp_path):
    s = _map(tmp_path / 'm')
    s.add(np.ones((1, DIM), np.float32), [PlaceRecord(x=500.0, y=0.0)])  # unsaved
    path = _desc_file(s)
    original = path.read_bytes()
    _truncate(path)
    with pytest.raises(MapError, match='truncated'):
        s.check_files()
    with pytest.raises(MapError, match='truncated'):
        s.save()
    path.write_bytes(original)  # restored in place: same size, new mtime, checksum matches
    s.check_files()
    s.save()
    assert MapStore.open(s.path).num_places == 201
    s.close()


def test_replaced_file_and_reader_reload(tmp_path):
    w = _map(tmp_path / 'm')
    reader = MapStore.open(w.path)
    w.close()
    path = _desc_file(reader)
    data = bytearray(path.read_bytes())
    data[-4:] = b'\x00\x00\x80\x7f'  # same size, other content, new inode
    tmp = path.with_name('x.tmp')
    tmp.write_bytes(bytes(data))
    os.replace(tmp, path)
    with pytest.raises(MapError, match='replaced or rewritten'):
        reader.reload_if_changed()
    with pytest.raises(MapError, match='replaced or rewritten'):
        reader.descriptors_of([0])
    _, ids = reader.search(np.ones((1, DIM), np.float32), 3)  # in-memory index still serves
    assert ids.shape == (1, 3)
    reader.close()


def test_request_id_is_answered_once_across_reopen(tmp_path):
    s = _map(tmp_path / 'm', n=10)
    x = np.random.default_rng(7).standard_normal((35, DIM)).astype(np.float32)
    ids, skipped = s.add(x, _places(35, 100.0), request_id='robot1-batch7')
    assert len(ids) == 35 and skipped == 0
    assert s.add(x, _places(35, 100.0), request_id='robot1-batch7') == (ids, 0)
    s.save()
    s.close()
    s = MapStore.open(tmp_path / 'm', writable=True)
    assert s.request_answer('robot1-batch7') == (ids, 0)
    assert s.add(x, _places(35, 100.0), request_id='robot1-batch7') == (ids, 0)
    assert s.num_places == 45 and not s.dirty
    more, _ = s.add(x[:2], _places(2, 300.0))  # no key: no dedup by key (old clients)
    assert len(more) == 2 and s.request_answer('') is None
    s.close()


def test_request_record_is_bounded(tmp_path, monkeypatch):
    from vpr_ros.mapstore import places
    monkeypatch.setattr(places, 'MAX_REQUESTS', 5)
    s = _map(tmp_path / 'm', n=1)
    for r in range(8):
        s.add(np.eye(1, DIM, r, dtype=np.float32), [PlaceRecord(x=float(r), y=1.0)],
              request_id=f'k{r}')
        s.save()
    assert s.request_answer('k0') is None and s.request_answer('k7') is not None
    assert s.request_answer('k3') is not None
    s.close()


def test_merge_into_itself_is_refused(tmp_path):
    s = _map(tmp_path / 'm', n=20)
    version = s.version
    os.symlink(tmp_path / 'm', tmp_path / 'alias')
    for other in (tmp_path / 'm', tmp_path / 'alias', tmp_path / 'm' / '.'):
        with pytest.raises(MapError, match='into itself'):
            s.merge(other)
    s.save(tmp_path / 'copy')  # a copy keeps the map id: without dedup every place doubles
    with pytest.raises(MapError, match='copy of this map'):
        s.merge(tmp_path / 'copy')
    assert s.merge(tmp_path / 'copy', dedup=_dedup()) == (0, 20)
    assert s.num_places == 20 and s.save() == version
    shutil.rmtree(tmp_path / 'copy')
    s.close()


def _dedup():
    from vpr_ros.mapstore import DedupConfig
    return DedupConfig(radius_m=2.0, yaw_deg=30.0, similarity=0.9)
