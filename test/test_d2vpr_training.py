"""Multi-similarity loss / miner and the two-stage distillation on generated data."""
import argparse
import json
import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vpr_ros.models import cricavpr, d2vpr  # noqa: F401  (registers the models)
from vpr_ros.models.checkpoint import load_checkpoint, read_checkpoint
from vpr_ros.cli import train_distill as distill_cli
from vpr_ros.training.batches import place_batches
from vpr_ros.training.distill import distill, DistillConfig
from vpr_ros.training.ms_loss import ms_mine, multi_similarity_loss

TINY = dict(embed_dim=32, depth=2, num_heads=2, init_values=1.0, input_size=56)
STUDENT = dict(TINY, taps=[1, 2], drm_dim=32, offset_hidden=16, fusion_hidden=16,
               pos_hidden=8)


def test_miner_selects_hard_pairs():
    labels = torch.tensor([0, 0, 0, 1, 1])
    sim = torch.tensor([[1.0, 0.9, 0.3, 0.35, 0.1],
                        [0.9, 1.0, 0.8, 0.2, 0.75],
                        [0.3, 0.8, 1.0, 0.0, 0.1],
                        [0.35, 0.2, 0.0, 1.0, 0.95],
                        [0.1, 0.75, 0.1, 0.95, 1.0]])
    pos, neg = ms_mine(sim, labels, epsilon=0.1)
    # anchor 0: hardest negative 0.35 -> positives with s - 0.1 < 0.35: only 2 (0.3);
    # easiest positive 0.3 -> negatives with s + 0.1 > 0.3: only 3 (0.35)
    assert pos[0].nonzero().flatten().tolist() == [2]
    assert neg[0].nonzero().flatten().tolist() == [3]
    # anchor 1: hardest negative 0.75 -> positives 0.9 and 0.8 both < 0.85? 0.8 only
    assert pos[1].nonzero().flatten().tolist() == [2]
    assert neg[1].nonzero().flatten().tolist() == [4]
    # anchor 3: positive 0.95, negatives <= 0.35: nothing is hard
    assert not pos[3].any() and not neg[3].any()
    assert not (pos & neg).any() and not pos.diagonal().any()


def _ms_by_hand(e, labels, alpha, beta, base, eps):
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    s = e @ e.T
    total = 0.0
    for i in range(len(e)):
        ps = [s[i, j] for j in range(len(e)) if j != i and labels[j] == labels[i]]
        ns = [s[i, j] for j in range(len(e)) if labels[j] != labels[i]]
        if eps is not None:
            ps, ns = ([v for v in ps if v - eps < max(ns)], [v for v in ns if v + eps > min(ps)])
        total += math.log(1 + sum(math.exp(-alpha * (v - base)) for v in ps)) / alpha
        total += math.log(1 + sum(math.exp(beta * (v - base)) for v in ns)) / beta
    return total / len(e)


@pytest.mark.parametrize('eps', [None, 0.1])
def test_ms_loss_matches_hand_computation(eps):
    rng = np.random.default_rng(3)
    e = rng.normal(size=(6, 5))
    labels = [0, 0, 1, 1, 2, 2]
    got = multi_similarity_loss(torch.tensor(e), torch.tensor(labels), 1.0, 50.0, 0.0, eps)
    assert got.item() == pytest.approx(_ms_by_hand(e, labels, 1.0, 50.0, 0.0, eps), rel=1e-9)
    # two orthogonal places, identical images within a place: 1/beta * log(1 + 2 e^0) ... by hand
    e2 = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    val = multi_similarity_loss(e2, torch.tensor([0, 0, 1, 1]), epsilon=None).item()
    assert val == pytest.approx(math.log(1 + math.exp(-1)) + math.log(3) / 50, rel=1e-6)


def test_place_batches_are_p_by_k():
    labels = np.repeat(np.arange(5), [2, 4, 4, 4, 1])
    batches = place_batches(labels, 2, 3, np.random.default_rng(0))
    assert [len(b) for b in batches] == [6, 6]  # 5 places, P=2: the lone last place dropped
    for b in batches:
        counts = np.unique(labels[b], return_counts=True)[1]
        assert counts.tolist() == [3, 3]


@pytest.fixture(scope='module')
def places(tmp_path_factory):
    """4 places x 3 noisy views of a place-specific random pattern, 56x56 PNG."""
    root = tmp_path_factory.mktemp('places')
    rng = np.random.default_rng(0)
    for p in range(4):
        base = rng.integers(0, 255, size=(8, 8, 3)).astype(np.float32)
        (root / f'place{p}').mkdir()
        for k in range(3):
            img = cv2.resize(base, (56, 56), interpolation=cv2.INTER_NEAREST)
            img = np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / f'place{p}' / f'{k}.png'), img)
    return root


def test_two_stage_distillation_lowers_loss(places, tmp_path):
    torch.manual_seed(0)
    cfg = DistillConfig(data=str(places), out=str(tmp_path / 'run'), student_kwargs=STUDENT,
                        teacher_kwargs=TINY, epochs1=6, epochs2=2, lr1=1e-3, lr2=1e-4,
                        lr_step_epochs=0, batch_size=6, places_per_batch=2,
                        images_per_place=3, stage2_last_blocks=1)
    log = distill(cfg)
    s1 = [e['loss'] for e in log['stage1']]
    assert len(s1) == 6 and s1[-1] < 0.5 * s1[0], s1
    assert all(np.isfinite(e['loss']) for e in log['stage2'])
    saved = json.loads((tmp_path / 'run' / 'log.json').read_text())
    assert [e['loss'] for e in saved['stage1']] == s1
    model, meta = load_checkpoint(log['stage2_checkpoint'])
    compat = dict(meta['compatible_with'])
    assert len(compat.pop('weights_fingerprint')) == 64  # the teacher's weights, by sha256
    assert compat == {'encoder': 'cricavpr_vitb14', 'dim': 14 * 32}
    assert meta['extra']['stage'] == 2 and model.dim == 14 * 32
    state, _ = read_checkpoint(log['stage1_checkpoint'])
    assert all(torch.is_tensor(v) for v in state.values())


def test_cli_with_gallery_teacher_adds_projection(places, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    distill_cli.add_arguments(parser)
    args = parser.parse_args([
        '--data', str(places), '--out', str(tmp_path / 'cli'), '--stages', '1',
        '--teacher', 'dinov2_vits14_gem', '--teacher-kwargs', json.dumps(TINY),
        '--student-kwargs', json.dumps(STUDENT), '--epochs1', '1', '--max-steps', '1',
        '--batch-size', '4'])
    assert args.lr1 == 2.5e-5 and args.ms_beta == 50.0 and args.ms_epsilon == 0.1
    assert distill_cli.run(args) == 0
    assert 'stage 1 epoch 1/1: loss' in capsys.readouterr().out
    model, meta = load_checkpoint(str(tmp_path / 'cli' / 'stage1.pt'))
    compat = dict(meta['compatible_with'])
    assert len(compat.pop('weights_fingerprint')) == 64  # the gallery's weights
    assert compat == {'encoder': 'dinov2_vits14_gem', 'dim': 32}
    assert isinstance(model.projection, torch.nn.Linear) and model.dim == 32
    out = model(torch.randn(2, 3, 56, 56))
    assert out.shape == (2, 32) and torch.allclose(out.norm(dim=1), torch.ones(2))
    assert F.mse_loss(out, out).item() == 0
