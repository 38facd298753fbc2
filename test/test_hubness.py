"""Map-side hubness correction (CSLS): the bias by hand, its folding into the vectors, and a
hub that takes every query without it and none with it."""
import numpy as np
import pytest

from vpr_ros.hubness import corrected_scores, hub_bias, with_bias
from vpr_ros.experiments.asym.hubness import (
    HubnessReference, add_csls_systems, base_tag, biased_distractors, split_reference)


def _unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_bias_is_half_the_mean_of_the_k_largest_reference_similarities():
    g = _unit([[1, 0], [0, 1]])
    ref = _unit([[1, 0], [0.6, 0.8], [0, 1], [-1, 0]])
    # entry 0 sims: 1, .6, 0, -1 -> top-2 mean .8 -> bias .4; entry 1: 0, .8, 1, 0 -> .9 -> .45
    np.testing.assert_allclose(hub_bias(g, ref, k=2), [0.4, 0.45], atol=1e-6)
    np.testing.assert_allclose(hub_bias(g, ref, k=1), [0.5, 0.5], atol=1e-6)
    assert hub_bias(np.zeros((0, 2)), ref, 2).shape == (0,)


def test_bias_folded_into_the_vectors_gives_the_corrected_inner_product():
    rng = np.random.default_rng(0)
    q, g = _unit(rng.standard_normal((5, 8))), _unit(rng.standard_normal((7, 8)))
    b = rng.uniform(0, 0.3, 7).astype(np.float32)
    qa, ga = with_bias(q, g, b)
    assert qa.shape == (5, 9) and ga.shape == (7, 9)
    np.testing.assert_allclose(qa @ ga.T, q @ g.T - b[None], atol=1e-6)
    np.testing.assert_allclose(corrected_scores(q, g, b), q @ g.T - b[None], atol=1e-6)


def test_refusals():
    g = _unit(np.eye(3))
    with pytest.raises(ValueError, match='between 1 and the 3'):
        hub_bias(g, g, k=4)
    with pytest.raises(ValueError, match=r'\(M, D\) map'):
        hub_bias(g, _unit(np.eye(4)), k=1)
    with pytest.raises(ValueError, match='2 biases for 3'):
        with_bias(g, g, np.zeros(2))


def test_a_hub_wins_every_query_without_the_correction_and_none_with_it():
    """Map entry 0 lies near the common direction of the query network's descriptors (a hub);
    each query's true entry is its own direction. The queries are noisy versions of their
    entry plus the common part, so the hub outscores the true entry until its bias (from
    reference queries of other places, which it attracts just as much) is subtracted."""
    rng = np.random.default_rng(1)
    d, n = 64, 20
    common = np.zeros(d, np.float32)
    common[0] = 1.0
    places = _unit(rng.standard_normal((n, d)) * np.r_[0.0, np.ones(d - 1)])  # _|_ common
    hub = _unit(common[None] + 0.01 * rng.standard_normal((1, d)))
    db = np.concatenate([hub, places])                                  # entry 0 = the hub
    queries = _unit(0.55 * places + 0.65 * common + 0.05 * rng.standard_normal((n, d)))
    others = _unit(rng.standard_normal((200, d)) * np.r_[0.0, np.ones(d - 1)])
    reference = _unit(0.55 * others + 0.65 * common)                    # other places
    plain = (queries @ db.T).argmax(axis=1)
    fixed = corrected_scores(queries, db, hub_bias(db, reference, k=10)).argmax(axis=1)
    assert (plain == 0).all()                                           # the hub takes all
    assert (fixed == np.arange(1, n + 1)).all()                         # each its own entry


def test_reference_places_stay_out_of_the_distractors():
    places = np.repeat(np.arange(20), 3)
    paths = [f'p{i}' for i in range(60)]
    gal = _unit(np.random.default_rng(0).standard_normal((60, 4)))
    ref, keep = split_reference(paths, places, gal, k=10, fraction=0.1, seed=0)
    ref_places = {int(places[int(p[1:])]) for p in ref.paths}
    assert len(ref_places) == 2 and len(ref.paths) == 6 and ref.k == 6  # k shrinks to 6
    assert not ref_places & set(places[keep].tolist()) and keep.sum() == 54
    np.testing.assert_array_equal(ref.gallery, gal[~keep])
    assert split_reference(paths, places, gal, k=0, fraction=0.1)[0] is None
    with pytest.raises(ValueError, match='share of the training places'):
        split_reference(paths, places, gal, k=5, fraction=1.0)


def test_csls_systems_and_biased_distractors():
    rng = np.random.default_rng(2)
    g = _unit(rng.standard_normal((12, 6)))
    ref = HubnessReference(3, ['a', 'b', 'c', 'd'], g[:4])
    systems = {'gallery_symmetric': {'query': g[4:7], 'db': g[7:]},
               'untrained_asym': {'query': g[4:7], 'db': g[7:]}}
    out = add_csls_systems(systems, ref, trained={})
    assert set(out) == {'gallery_symmetric', 'untrained_asym', 'gallery_symmetric_csls'}
    s = out['gallery_symmetric_csls']
    np.testing.assert_allclose(s['query'] @ s['db'].T,
                               corrected_scores(g[4:7], g[7:], hub_bias(g[7:], g[:4], 3)),
                               atol=1e-6)
    d = biased_distractors('gallery_symmetric_csls', g[7:], ref, trained={})
    np.testing.assert_allclose(d, s['db'], atol=1e-6)
    assert base_tag('ours_asym_csls') == 'ours_asym' and base_tag('ours_asym') == 'ours_asym'
    assert add_csls_systems(systems, None, {}) is systems


def test_reference_file_round_trip_and_refusals(tmp_path):
    from vpr_ros.hubness import HubnessCorrector, load_reference, save_reference
    ref = _unit(np.random.default_rng(3).standard_normal((12, 5)))
    save_reference(tmp_path / 'r.npz', ref, 'q_net', 'map_net', k=4)
    desc, meta = load_reference(tmp_path / 'r.npz')
    np.testing.assert_allclose(desc, ref, atol=2e-3)                    # stored as float16
    assert meta == {'encoder': 'q_net', 'compatible_with': 'map_net', 'k': 4, 'num': 12,
                    'dim': 5}
    hub = HubnessCorrector.from_file(tmp_path / 'r.npz', k=4, candidates=8)
    hub.check_map(5, 'map_net')
    with pytest.raises(ValueError, match="is for 5-d maps of 'map_net'; this map is 5-d from"):
        hub.check_map(5, 'other_net')
    with pytest.raises(ValueError, match='this map is 6-d'):
        hub.check_map(6, 'map_net')
    (tmp_path / 'bad.npz').write_bytes(b'not a zip')
    with pytest.raises(ValueError, match='not a vpr_ros hubness reference'):
        load_reference(tmp_path / 'bad.npz')
    np.savez(tmp_path / 'nan.npz', descriptors=np.full((2, 3), np.nan), meta=np.array('{}'))
    with pytest.raises(ValueError, match='finite'):
        load_reference(tmp_path / 'nan.npz')
    with pytest.raises(ValueError, match='finite'):
        save_reference(tmp_path / 'x.npz', np.zeros((0, 3)), 'a', 'b')
    with pytest.raises(ValueError, match='candidates'):
        HubnessCorrector(ref, k=2, candidates=0)


def test_search_map_rescores_the_stores_candidates_and_caches_biases(tmp_path):
    """The matcher's search (also the offline evaluation's) on a real map store."""
    from vpr_ros.hubness import HubnessCorrector, search_map
    from vpr_ros.mapstore import MapStore, PlaceRecord
    rng = np.random.default_rng(1)
    d, n = 32, 6
    common = np.eye(d, dtype=np.float32)[0]
    mask = np.r_[0.0, np.ones(d - 1)]
    places = _unit(rng.standard_normal((n, d)) * mask)
    db = np.concatenate([_unit((common + 0.01 * rng.standard_normal(d))[None]), places])
    queries = _unit(0.55 * places + 0.65 * common)
    reference = _unit(0.55 * _unit(rng.standard_normal((100, d)) * mask) + 0.65 * common)
    store = MapStore.create(tmp_path / 'map', encoder='g', dim=d, dtype='float32')
    store.add(db, [PlaceRecord(x=10.0 * i, y=0.0, yaw=0.0) for i in range(len(db))])
    store.save()
    hub = HubnessCorrector(reference, k=5, candidates=4)
    calls = []
    real = store.descriptors_of
    store.descriptors_of = lambda ids: calls.append(len(ids)) or real(ids)
    for i, q in enumerate(queries):
        s_plain, ids_plain = search_map(store, q, 2)
        s_hub, ids_hub = search_map(store, q, 2, hub)
        assert ids_plain[0] == 0 and ids_hub[0] == i + 1 and len(ids_hub) == 2
        assert s_hub[0] >= s_hub[1]
        want = q @ db[ids_hub].T - hub_bias(db[ids_hub], reference, 5)
        np.testing.assert_allclose(s_hub, want, atol=1e-5)
    assert sum(calls) == len(db)            # each entry's bias computed once, then cached
    hub.reset()
    search_map(store, queries[0], 2, hub)
    assert sum(calls) == len(db) + 4
    store.close()
