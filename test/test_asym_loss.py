"""AsymVPR loss, implicit augmentation, memory bank, place ids and CSD loss on tiny inputs."""
import math

import numpy as np
import pytest
import torch

from vpr_ros.training.asym_loss import asym_logits, asym_loss
from vpr_ros.training.csd import csd_loss, knn_neighbours
from vpr_ros.training.memory_bank import MemoryBank
from vpr_ros.training.ms_loss import multi_similarity_loss
from vpr_ros.training.places import assign_place_ids, cluster_place_ids, grid_place_ids

Q = torch.tensor([[1.0, 0.0]])
G = torch.tensor([[0.8, 0.6]])
CENTROIDS = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])   # row 0 = own place
VARIANCES = torch.tensor([[0.5, 0.5], [0.01, 0.02], [0.03, 0.0]])
OWN = torch.tensor([0])


def _ce(logits):
    return -logits[0] + math.log(sum(math.exp(v) for v in logits))


def test_asym_loss_by_hand_with_augmentation():
    # tau = 0.5, gamma = 2: augmentation factor gamma / (2 tau^2) = 4.
    # pos = 0.8 / 0.5 = 1.6; place 1: 0 / 0.5 + 4 * (1*0.01 + 0*0.02) = 0.04;
    # place 2: 0.6 / 0.5 + 4 * (1*0.03 + 0*0.0) = 1.32; own place 0 excluded.
    logits = asym_logits(Q, G, OWN, CENTROIDS, VARIANCES, tau=0.5, gamma=2.0)
    assert logits.shape == (1, 4)
    assert logits[0, 1].item() == float('-inf')
    torch.testing.assert_close(logits[0, [0, 2, 3]], torch.tensor([1.6, 0.04, 1.32]))
    loss = asym_loss(Q, G, OWN, CENTROIDS, VARIANCES, tau=0.5, gamma=2.0)
    assert loss.item() == pytest.approx(_ce([1.6, 0.04, 1.32]), rel=1e-6)


def test_asym_loss_by_hand_without_augmentation():
    loss = asym_loss(Q, G, OWN, CENTROIDS, VARIANCES, tau=0.5, gamma=0.0)
    assert loss.item() == pytest.approx(_ce([1.6, 0.0, 1.2]), rel=1e-6)
    # augmentation only ever raises negative logits, so the loss is an upper bound
    assert asym_loss(Q, G, OWN, CENTROIDS, VARIANCES, 0.5, 2.0).item() > loss.item()


def test_centroid_term_by_hand():
    # centroid_weight 0.5 adds 0.5 * CE over the centroids with the own centroid as positive:
    # own 1.0 / 0.5 = 2.0 (no augmentation on the positive), others 0.04 and 1.32 as above.
    base = _ce([1.6, 0.04, 1.32])
    loss = asym_loss(Q, G, OWN, CENTROIDS, VARIANCES, tau=0.5, gamma=2.0, centroid_weight=0.5)
    assert loss.item() == pytest.approx(base + 0.5 * _ce([2.0, 0.04, 1.32]), rel=1e-6)


def test_batch_negatives_use_only_places_in_the_batch():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    g = torch.tensor([[0.8, 0.6], [0.6, 0.8]])
    rows = torch.tensor([0, 2])  # place 1 is not in the batch
    logits = asym_logits(q, g, rows, CENTROIDS, VARIANCES, tau=0.5, gamma=0.0,
                         negatives='batch')
    # columns: pos, place 0, place 2
    torch.testing.assert_close(logits[0], torch.tensor([1.6, float('-inf'), 1.2]))
    torch.testing.assert_close(logits[1], torch.tensor([1.6, 0.0, float('-inf')]))


def test_memory_bank_matches_numpy():
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((10, 5)).astype(np.float32)
    labels = np.array([3, 3, 7, 7, 7, 1, 3, 1, 9, 7])
    bank = MemoryBank.from_features(feats, labels)
    assert bank.place_ids.tolist() == [1, 3, 7, 9]
    assert bank.counts.tolist() == [2, 3, 4, 1]
    for j, p in enumerate(bank.place_ids):
        f = feats[labels == p]
        mean = f.mean(axis=0)
        np.testing.assert_allclose(bank.centroids[j].numpy(), mean / np.linalg.norm(mean),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(bank.variances[j].numpy(), f.var(axis=0), rtol=1e-4,
                                   atol=1e-6)
    assert bank.rows_of([7, 1]).tolist() == [2, 0]
    with pytest.raises(KeyError):
        bank.rows_of([5])
    assert bank.nbytes() == 2 * 4 * 5 * 4


def test_grid_place_ids():
    x = [0.0, 5.0, 19.9, 20.0, -0.1, 45.0]
    y = [0.0, 5.0, 19.9, 0.0, 0.0, 41.0]
    assert grid_place_ids(x, y, cell_m=20.0).tolist() == [0, 0, 0, 1, 2, 3]
    yaw = [0.0, math.pi, 0.1, 0.0, 0.0, 0.0]  # 2 heading sectors split the first cell
    assert grid_place_ids(x, y, 20.0, yaw=yaw, yaw_bins=2).tolist() == [0, 1, 0, 2, 3, 4]
    # the data's own ids win when every row has one
    assert assign_place_ids(x, y, ['a', 'b', 'a', 'c', 'c', 'b']).tolist() == [0, 1, 0, 2, 2, 1]
    assert assign_place_ids(x, y, ['a', '', 'a', 'c', 'c', 'b'], cell_m=20.0).tolist() == \
        [0, 0, 0, 1, 2, 3]
    assert cluster_place_ids([0, 3, 30, 8, 31], [0, 0, 0, 0, 0], radius_m=5).tolist() == \
        [0, 0, 1, 2, 1]


def test_csd_loss_by_hand():
    q = torch.tensor([[1.0, 0.0]])
    g = torch.tensor([[0.0, 1.0]])
    anchors = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    # tau = 1: p_q = softmax([1, 0]), p_g = softmax([0, 1]); ||q - g||^2 = 2
    a, b = math.exp(1) / (math.exp(1) + 1), 1 / (math.exp(1) + 1)
    kl = b * math.log(b / a) + a * math.log(a / b)
    loss = csd_loss(q, g, anchors, tau_q=1.0, tau_g=1.0, lam=0.5)
    assert loss.item() == pytest.approx(kl + 0.5 * 2.0, rel=1e-5)
    assert csd_loss(g, g, anchors, 1.0, 1.0, 0.5).item() == pytest.approx(0.0, abs=1e-6)


def test_knn_neighbours_put_self_first_then_nearest():
    f = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    idx, secs = knn_neighbours(f, k=2)
    assert idx[:, 0].tolist() == [0, 1, 2, 3]
    assert idx[:, 1].tolist() == [1, 0, 3, 2]
    assert secs >= 0


def test_multi_similarity_loss_by_hand():
    emb = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    pos = math.log1p(math.exp(-0.6))  # every anchor keeps its only positive (sim 0.6)
    negs = [[0.8], [0.96, 0.8], [0.8, 0.96], [0.8]]  # mined: sim + 0.1 > 0.6
    expected = np.mean([pos + math.log1p(sum(math.exp(50 * s) for s in n)) / 50 for n in negs])
    loss = multi_similarity_loss(emb, labels)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # separated places: nothing is mined, the loss is 0
    easy = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert multi_similarity_loss(easy, labels).item() == 0.0


def test_cross_model_ms_loss_by_hand():
    # anchors q against the gallery embeddings g of the same batch; the diagonal (the same
    # image's gallery embedding) is a positive. No miner: every pair counts.
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    g = torch.tensor([[0.8, 0.6], [0.6, 0.8]])
    labels = torch.tensor([0, 1])
    # anchor 0: pos s=0.8, neg s=0.6; anchor 1: pos s=0.8, neg s=0.6
    one = math.log1p(math.exp(-0.8)) + math.log1p(math.exp(50 * 0.6)) / 50
    got = multi_similarity_loss(q, labels, epsilon=None, ref=g)
    assert got.item() == pytest.approx(one, rel=1e-6)
    # same place: both g are positives of both anchors, nothing is a negative
    both = math.log(1 + math.exp(-0.8) + math.exp(-0.6))
    got = multi_similarity_loss(q, torch.tensor([0, 0]), epsilon=None, ref=g)
    assert got.item() == pytest.approx(both, rel=1e-6)


def test_cross_weight_adds_the_query_gallery_term():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    g = torch.tensor([[0.8, 0.6], [0.75, 0.6614]])  # anchor 0: pos 0.8, neg 0.75 (mined)
    rows = torch.tensor([0, 2])
    base = asym_loss(q, g, rows, CENTROIDS, VARIANCES, tau=0.5, gamma=2.0)
    cross = multi_similarity_loss(q, rows, ref=g)
    got = asym_loss(q, g, rows, CENTROIDS, VARIANCES, tau=0.5, gamma=2.0, cross_weight=0.3)
    assert cross.item() > 0
    assert got.item() == pytest.approx(base.item() + 0.3 * cross.item(), rel=1e-6)


def test_align_weight_adds_one_minus_cosine_by_hand():
    # q = (1, 0), g = (0.8, 0.6): 1 - cos = 0.2, weight 2 adds 0.4
    base = asym_loss(Q, G, OWN, CENTROIDS, VARIANCES, tau=0.5, gamma=2.0)
    got = asym_loss(Q, G, OWN, CENTROIDS, VARIANCES, tau=0.5, gamma=2.0, align_weight=2.0)
    assert got.item() == pytest.approx(base.item() + 0.4, rel=1e-6)


def test_compatibility_is_the_mean_cosine_to_the_gallery_of_the_same_query():
    from vpr_ros.experiments.asym.heldout import compatibility
    g = np.array([[1.0, 0.0], [0.0, 1.0]])
    split = {'gallery_symmetric': {'query': g},
             'ours_asym': {'query': np.array([[2.0, 0.0], [1.0, 1.0]])},  # cos 1 and 0.7071
             'symmetric_student': {'query': np.array([[0.0, 1.0], [1.0, 0.0]])}}
    got = compatibility([split, {k: {'query': v['query'][:1]} for k, v in split.items()}])
    assert set(got) == {'ours_asym'}
    assert got['ours_asym'] == pytest.approx((1.0 + 0.5 ** 0.5 + 1.0) / 3)


def test_self_weight_adds_the_query_query_term_by_hand():
    # two queries of place 0 at cosine 0.6, a third (place 2) at 0.8 and 0.96 to them: both
    # anchors of place 0 keep their positive and the hard negative; place 2's anchor has no pair
    q = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6]])
    g = torch.tensor([[0.8, 0.6], [0.6, 0.8], [1.0, 0.0]])
    rows = torch.tensor([0, 0, 2])
    pos = math.log(1 + math.exp(-0.6))
    by_hand = (2 * pos + math.log(1 + math.exp(50 * 0.8)) / 50
               + math.log(1 + math.exp(50 * 0.96)) / 50) / 3
    base = asym_loss(q, g, rows, CENTROIDS, VARIANCES, tau=0.5, gamma=2.0)
    got = asym_loss(q, g, rows, CENTROIDS, VARIANCES, tau=0.5, gamma=2.0, self_weight=0.5)
    assert got.item() == pytest.approx(base.item() + 0.5 * by_hand, rel=1e-5)


def test_instance_weight_adds_the_instance_bank_term_by_hand():
    # q = (1, 0), tau 0.5; instances: 0 = the query's own image (left out), 1 = another image
    # of its place (cos 0.6), 2 and 3 of place 1 (cos 0 and 0.8): -log(e^1.2 / (e^1.2 + e^0 +
    # e^1.6)); a query whose place has no other image adds nothing
    inst = torch.tensor([[0.8, 0.6], [0.6, 0.8], [0.0, 1.0], [0.8, 0.6]])
    inst_rows = torch.tensor([0, 0, 1, 1])
    by_hand = _ce([1.2, 0.0, 1.6])
    base = asym_loss(Q, G, OWN, CENTROIDS, VARIANCES, tau=0.5, gamma=2.0)
    got = asym_loss(Q, G, OWN, CENTROIDS, VARIANCES, tau=0.5, gamma=2.0, instance_weight=0.5,
                    instances=(inst, inst_rows, torch.tensor([0])))
    assert got.item() == pytest.approx(base.item() + 0.5 * by_hand, rel=1e-6)
    alone = asym_loss(Q, G, OWN, CENTROIDS, VARIANCES, tau=0.5, gamma=2.0, instance_weight=1.0,
                      instances=(inst[:1], inst_rows[:1], torch.tensor([0])))
    assert alone.item() == pytest.approx(base.item(), rel=1e-6)
    with pytest.raises(ValueError, match='instance bank'):
        asym_loss(Q, G, OWN, CENTROIDS, VARIANCES, instance_weight=1.0)


def test_the_papers_loss_is_the_default():
    """The trainer's defaults give the paper's loss: no own-centroid term, constant gamma 15."""
    from vpr_ros.training.asym import AsymTrainConfig
    cfg = AsymTrainConfig()
    assert cfg.centroid_weight == 0.0 and cfg.gamma == 15.0 and cfg.gamma_schedule == 'constant'
    assert cfg.cross_weight == cfg.align_weight == cfg.self_weight == cfg.instance_weight == 0.0


def test_gamma_ramp_is_isda_lambda_t():
    """ISDA's ramp lambda_t = lambda_0 * t / T: 0 at the first step, gamma at the last, linear."""
    from vpr_ros.training.asym import gamma_at
    assert gamma_at('constant', 15.0, 0, 100) == 15.0
    assert [gamma_at('ramp', 15.0, t, 100) for t in (0, 25, 100, 150)] == [0.0, 3.75, 15.0, 15.0]
    with pytest.raises(ValueError, match='constant or ramp'):
        gamma_at('cosine', 15.0, 0, 1)
