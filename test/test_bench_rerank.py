"""The matcher's compressed index for big maps: IVF-PQ candidates re-scored exactly from the
descriptor file (pread), through MapStore create/save/open."""
import numpy as np

from vpr_ros.mapstore import MapStore, PlaceRecord
from vpr_ros.mapstore import index as idx


def _map(path, n=3000, dim=32, spec='IVF16,PQ8x4,Rerank50'):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    store = MapStore.create(path, 'synthetic', dim, dtype='float16', index=spec)
    store.add(x, [PlaceRecord(x=float(i), y=0.0) for i in range(n)])
    store.save()
    store.close()
    return x.astype(np.float16).astype(np.float32)


def test_rerank_scores_are_exact_after_reopen(tmp_path):
    x = _map(tmp_path / 'm')
    store = MapStore.open(tmp_path / 'm')
    assert store.index_type == 'IVF16,PQ8x4,Rerank50'
    assert isinstance(store._index, idx.RerankIndex)
    q = x[[5, 17, 2999]] + 0.05
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    scores, ids = store.search(q, 5)
    assert list(ids[:, 0]) == [5, 17, 2999]
    np.testing.assert_allclose(scores, np.einsum('qkd,qd->qk', x[ids], q), atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-7)
    store.close()


def test_auto_index_rule_for_big_maps():
    assert idx.choose_index('auto', 10_000, 1280) == 'Flat'
    assert idx.choose_index('auto', 100_000, 1280) == 'HNSW32'
    big = idx.choose_index('auto', 1_000_000, 1280)
    assert big == 'IVF1024,PQ64x4fs,Rerank100'
    assert idx.split_rerank(big) == ('IVF1024,PQ64x4fs', 100)
    assert idx.split_rerank('HNSW32') == ('HNSW32', 0)
