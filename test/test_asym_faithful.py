"""The faithful AsymVPR protocol: its presets, the seen/unseen split and the multi-seed summary."""
import argparse

import numpy as np
import pytest

from vpr_ros.experiments.asym import faithful
from vpr_ros.experiments.asym.heldout import seen_unseen


def _args(*flags):
    from vpr_ros.cli import train_asym
    parser = argparse.ArgumentParser()
    train_asym.add_arguments(parser)
    return train_asym.config_from_args(parser.parse_args(list(flags)))


@pytest.mark.parametrize('preset, seeds, towns, held', [
    ('faithful', '0,1,2', 12, 16), ('faithful-small', '0', 3, 4)])
def test_faithful_presets_hold_the_protocol(preset, seeds, towns, held):
    cfg, pre = _args('--preset', preset)
    assert cfg.gallery_model == 'efficientnet_lite2_vpr24'
    assert cfg.query_model == 'efficientnet_lite0_query' and cfg.input_size == (96, 128)
    assert cfg.query_pretrained == 'auto' and not cfg.start_from_student   # ImageNet start
    assert cfg.centroid_weight == 0.0 and cfg.gamma == 15.0               # the paper's loss
    assert cfg.ablate_gamma0 and cfg.ablate_ramp
    assert set(cfg.baselines.split(',')) == {'symmetric', 'csd', 'distill'}
    assert cfg.seeds == seeds and len(pre['query_seeds']) == towns
    assert len(pre['heldout_seeds']) == held
    assert not set(pre['query_seeds']) & set(pre['heldout_seeds'])
    if preset == 'faithful':   # >= 3,000 unseen queries: 16 towns x places x 3 conditions
        assert held * pre['heldout_places'] * 3 >= 3000
    # an explicit flag still wins over the preset
    assert _args('--preset', preset, '--epochs', '2')[0].epochs == 2


def test_seen_unseen_split_and_paired_rows():
    conds = ['dusk', 'fog', 'night', 'dusk', 'fog', 'night']
    top1 = {'ours_asym': np.array([1, 1, 1, 0, 1, 0], bool),
            'symmetric_student': np.array([1, 0, 0, 1, 0, 0], bool)}
    out = seen_unseen(top1, conds, ('day', 'overcast', 'dusk'), np.array([0, 0, 0, 1, 1, 1]))
    assert out['seen']['conditions'] == ['dusk'] and out['seen']['queries'] == 2
    assert out['unseen']['conditions'] == ['fog', 'night'] and out['unseen']['queries'] == 4
    assert out['seen']['R@1'] == {'ours_asym': 50.0, 'symmetric_student': 100.0}
    assert out['unseen']['R@1'] == {'ours_asym': 75.0, 'symmetric_student': 0.0}
    pair = out['unseen']['paired']['symmetric_student']
    assert pair['diff'] == 75.0 and pair['resampled'] == 'places' and pair['groups'] == 2


def _seed(diff_low):
    row = {'R@1': {'ours_asym': 60.0, 'symmetric_student': 50.0},
           'paired': {'symmetric_student': {'diff': 10.0, 'ci_low': diff_low, 'ci_high': 20.0,
                                            'p': 0.01}},
           'queries': 30, 'conditions': ['fog']}
    return {'by_seen': {'unseen': row, 'seen': dict(row, conditions=['dusk'])}}


def test_summary_counts_seeds_with_the_interval_above_zero():
    s = faithful.summarize({0: _seed(2.0), 1: _seed(-1.0), 2: _seed(0.5)})
    assert s['wins'] == {'ours_asym - symmetric_student': [0, 2]}
    assert s['mean_r1']['unseen'] == {'ours_asym': 60.0, 'symmetric_student': 50.0}
    md = faithful.markdown(s)
    assert 'seed 1, unseen conditions (fog; 30 queries)' in md
    assert 'interval above 0 in 2 of 3 seed(s)' in md and '+10.0 | +2.0 to +20.0' in md


def test_parse_seeds():
    assert faithful.parse_seeds('0, 1,2', 7) == [0, 1, 2]
    assert faithful.parse_seeds('', 7) == [7]


def test_seeds_run_as_separate_processes_are_summarized_together(tmp_path):
    """Each process runs one seed into the same folder; the summary covers every seed folder
    finished there, whichever process writes it."""
    import json
    for seed, low in ((0, 2.0), (1, -1.0)):
        (tmp_path / f'seed{seed}').mkdir()
        (tmp_path / f'seed{seed}' / 'report.json').write_text(json.dumps(_seed(low)))
    (tmp_path / 'seedx').mkdir()                      # not a seed folder: ignored
    found = faithful.finished_reports(tmp_path)
    assert list(found) == [0, 1]
    s = faithful.summarize({**found, 2: _seed(0.5)})
    assert s['wins'] == {'ours_asym - symmetric_student': [0, 2]}
