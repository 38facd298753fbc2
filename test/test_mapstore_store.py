"""MapStore: round trip, search correctness, validation, append/reindex, merge, dedup, stats."""
import math

import faiss
import numpy as np
import pytest

from vpr_ros.mapstore import DedupConfig, MapError, MapStore, PlaceRecord


def _unit(n, dim, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _places(n, robot='r1', session='s1', x0=0.0):
    return [PlaceRecord(x=x0 + i, y=2.0 * i, z=0.5, yaw=0.1 * i, robot_id=robot,
                        session=session, stamp=100.0 + i, note=f'n{i}') for i in range(n)]


@pytest.mark.parametrize('dtype', ['float16', 'float32'])
def test_round_trip_and_search_matches_brute_force(tmp_path, dtype):
    x = _unit(300, 32)
    store = MapStore.create(tmp_path / 'm', 'enc_a', 32, dtype=dtype)
    ids, skipped = store.add(x, _places(300))
    assert ids == list(range(300)) and skipped == 0
    v1 = store.version
    assert store.save() != v1
    store.close()
    ro = MapStore.open(tmp_path / 'm', expected_encoder='enc_a', expected_dim=32)
    assert (ro.num_places, ro.dim, ro.encoder, ro.frame_id) == (300, 32, 'enc_a', 'map')
    assert ro.manifest['dtype'] == dtype and ro.index_type == 'Flat'
    assert isinstance(ro._v.descriptors, np.memmap)
    stored = ro.descriptors_of(np.arange(300))
    tol = 1e-3 if dtype == 'float16' else 1e-6
    np.testing.assert_allclose(stored, x, atol=tol)
    q = _unit(5, 32, seed=1)
    scores, found = ro.search(q, 7)
    ref = q @ stored.T
    np.testing.assert_array_equal(found, np.argsort(-ref, axis=1)[:, :7])
    np.testing.assert_allclose(scores, np.sort(ref, axis=1)[:, ::-1][:, :7], atol=1e-5)
    recs = ro.get_places([7, 3])
    assert [r.id for r in recs] == [7, 3] and recs[0].note == 'n7' and recs[1].y == 6.0
    assert math.isnan(recs[0].lat) and recs[0].robot_id == 'r1' and recs[0].stamp == 107.0
    np.testing.assert_allclose(ro.positions([7, 3]), [[7, 14, 0.5], [3, 6, 0.5]])
    np.testing.assert_allclose(ro.yaws([7]), [0.7])
    _, few = ro.search(q[:1], 400)
    assert (few[0, 300:] == -1).all() and sorted(few[0, :300]) == list(range(300))


def test_validation_errors(tmp_path):
    with pytest.raises(MapError, match='does not exist'):
        MapStore.open(tmp_path / 'nope')
    store = MapStore.create(tmp_path / 'm', 'enc_a', 16)
    store.add(_unit(10, 16), _places(10))
    store.save()
    with pytest.raises(MapError, match="'enc_a'.*'enc_b'"):
        MapStore.open(tmp_path / 'm', expected_encoder='enc_b')
    with pytest.raises(MapError, match='16-d.*32-d'):
        MapStore.open(tmp_path / 'm', expected_dim=32)
    bad = _unit(3, 16)
    bad[1, 4] = np.nan
    version = store.version
    with pytest.raises(MapError, match='NaN'):
        store.add(bad, _places(3))
    with pytest.raises(MapError, match=r'\(N, 16\)'):
        store.add(_unit(3, 8), _places(3))
    with pytest.raises(MapError, match='encoder'):
        store.add(_unit(3, 16), _places(3), encoder='enc_b')
    assert store.num_places == 10 and not store.dirty and store.save() == version
    store.close()
    with pytest.raises(MapError, match='read-only'):
        MapStore.open(tmp_path / 'm').add(_unit(1, 16), _places(1))
    with pytest.raises(MapError, match='already exists'):
        MapStore.create(tmp_path / 'm', 'enc_a', 16)
    name = MapStore.open(tmp_path / 'm').manifest['files']['descriptors']['name']
    path = tmp_path / 'm' / name
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(MapError, match='checksum'):
        MapStore.open(tmp_path / 'm')


def test_append_reindex_and_reload(tmp_path):
    x = _unit(400, 24)
    w = MapStore.create(tmp_path / 'm', 'enc', 24, dtype='float32')
    w.add(x[:200], _places(200))
    w.save()
    reader = MapStore.open(tmp_path / 'm')
    assert reader.reload_if_changed() is False
    w.add(x[200:], _places(200, robot='r2', x0=500))
    assert w.reindex('HNSW16') == 'HNSW16'
    w.save()
    assert reader.reload_if_changed() is True
    assert reader.num_places == 400 and reader.index_type == 'HNSW16'
    _, ids = reader.search(x[[5, 250, 399]], 1)
    assert ids[:, 0].tolist() == [5, 250, 399]
    reader.set_search_params(ef_search=200)
    assert faiss.downcast_index(reader._index).hnsw.efSearch == 200
    assert reader.get_places([250])[0].robot_id == 'r2'
    w.close()
    again = MapStore.open(tmp_path / 'm', writable=True)
    assert again.index_type == 'HNSW16' and again.num_places == 400
    stats = again.stats()
    assert stats['robots'] == {'r1': 200, 'r2': 200} and stats['sessions'] == {'s1': 400}
    assert stats['robot_sessions']['r2']['s1']['last_stamp'] == 299.0


def test_one_writer_at_a_time(tmp_path):
    w = MapStore.create(tmp_path / 'm', 'enc', 8)
    with pytest.raises(MapError, match='already open for writing'):
        MapStore.open(tmp_path / 'm', writable=True)
    w.close()
    MapStore.open(tmp_path / 'm', writable=True).close()


def test_merge_and_refusal(tmp_path):
    from vpr_ros.geo import MapOrigin
    o1 = MapOrigin(500000.0, 4000000.0, 33, 'T')
    o2 = MapOrigin(500100.0, 4000050.0, 33, 'T')
    a = MapStore.create(tmp_path / 'a', 'enc', 16, origin=o1)
    a.add(_unit(5, 16), _places(5))
    a.save()
    b = MapStore.create(tmp_path / 'b', 'enc', 16, origin=o2)
    b.add(_unit(4, 16, seed=3), [PlaceRecord(x=0.0, y=0.0, robot_id='rb')] * 4)
    b.save()
    b.close()
    c = MapStore.create(tmp_path / 'c', 'other_enc', 16, origin=o1)
    c.save()
    c.close()
    version = a.version
    with pytest.raises(MapError, match="'other_enc'.*'enc'"):
        a.merge(tmp_path / 'c')
    assert a.num_places == 5 and not a.dirty and a.save() == version
    added, skipped = a.merge(tmp_path / 'b')
    assert (added, skipped) == (4, 0)
    np.testing.assert_allclose(a.positions([5])[0, :2], [100.0, 50.0], atol=1e-3)
    a.save()
    assert MapStore.open(tmp_path / 'a').stats()['robots'] == {'r1': 5, 'rb': 4}


def test_dedup_keeps_other_views_and_conditions(tmp_path):
    x = _unit(3, 32)
    s = MapStore.create(tmp_path / 'm', 'enc', 32)
    s.add(x[:1], [PlaceRecord(x=0.0, y=0.0, yaw=0.0)])
    cfg = DedupConfig(radius_m=2.0, yaw_deg=30.0, similarity=0.9)
    near = x[:1] + 0.01 * x[1:2]
    cases = [
        (near, PlaceRecord(x=1.0, y=0.5, yaw=0.2), 0),            # same spot, view, look
        (near, PlaceRecord(x=1.0, y=0.5, yaw=math.pi), 1),        # opposite heading
        (x[2:3], PlaceRecord(x=1.0, y=0.5, yaw=0.0), 1),          # other condition
        (near, PlaceRecord(x=5.0, y=0.0, yaw=0.0), 1),            # farther than radius
    ]
    for desc, place, expect in cases:
        added, skipped = s.add(desc, [place], dedup=cfg)
        assert (len(added), skipped) == (expect, 1 - expect)
    # within one batch the first copy is kept, the second skipped
    added, skipped = s.add(np.vstack([x[1:2], x[1:2]]),
                           [PlaceRecord(x=50.0, y=50.0), PlaceRecord(x=50.5, y=50.0)], dedup=cfg)
    assert (len(added), skipped) == (1, 1)


def test_save_as_copy_and_float16_default(tmp_path):
    x = _unit(50, 16)
    s = MapStore.create(tmp_path / 'm', 'enc', 16)
    s.add(x, _places(50))
    version = s.save(tmp_path / 'copy')  # a full copy; this store keeps its own path
    assert s.path == tmp_path / 'm' and s.dirty
    c = MapStore.open(tmp_path / 'copy', expected_encoder='enc')
    assert c.version == version and c.num_places == 50 and c.manifest['dtype'] == 'float16'
    assert c.descriptors_of([3]).dtype == np.float32
    np.testing.assert_allclose(c.descriptors_of(np.arange(50)), x, atol=1e-3)
    assert MapStore.open(tmp_path / 'm').num_places == 0
    with pytest.raises(MapError, match='not empty'):
        s.save(tmp_path / 'copy')
