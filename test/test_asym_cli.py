"""`vpr-ros train asym` end to end on a tiny on-disk town: report, checkpoints, compatibility."""
import argparse
import json
import math

import numpy as np
import pytest
import torch

from vpr_ros.geo import MapOrigin
from vpr_ros.world.camera import CameraPose
from vpr_ros.world.writers import GSVWriter, VGWriter

CONDS = ('day', 'dusk', 'night', 'rain')


def _scene(rng):
    import cv2
    return cv2.resize(rng.integers(0, 256, (4, 4, 3)).astype(np.uint8), (48, 48),
                      interpolation=cv2.INTER_CUBIC)


def _shot(img, k, rng):
    out = img.astype(np.float32) * (1.0, 0.7, 0.4, 0.8)[k] + rng.normal(0, 5, img.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def _write_towns(root):
    """A GSV-layout training town (8 places x 4 conditions) and two VG held-out towns."""
    origin = MapOrigin.from_latlon(47.0, 8.0)
    rng = np.random.default_rng(0)
    gsv = GSVWriter(root / 'train', 'Tiny', origin)
    for p in range(8):
        img = _scene(rng)
        for k, c in enumerate(CONDS):
            gsv.write(_shot(img, k, rng), CameraPose(p * 50.0, 0.0), p, c, k)
    gsv.close()
    for town in ('held', 'held2'):
        vg = VGWriter(root / town, 'test', origin)
        for p in range(6):
            img = _scene(rng)
            pose = CameraPose(p * 50.0, 100.0)
            vg.write('database', _shot(img, 0, rng), pose, p, 'day', p)
            for k, c in enumerate(CONDS):
                vg.write('queries', _shot(img, k, rng), pose, p, c, 10 * k + p)
    return root / 'train', [root / t / 'test' for t in ('held', 'held2')]


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    from vpr_ros.cli import train_asym as asym_cli
    root = tmp_path_factory.mktemp('asym')
    train, held = _write_towns(root)
    parser = argparse.ArgumentParser()
    asym_cli.add_arguments(parser)
    args = parser.parse_args([
        '--gallery-model', 'efficientnet_lite0_gem', '--gallery-input-size', '64',
        '--query-model', 'mobilenetv3_small', '--input-size', '32', '--data', str(train),
        '--eval', ','.join(map(str, held)), '--out', str(root / 'out'), '--epochs', '1',
        '--batch-size', '16', '--bank-fractions', '0.5', '--latency-runs', '2',
        '--export-onnx', 'true', '--progress', 'false', '--eval-radius-m', '10',
        '--baselines', 'symmetric,csd,d2vpr,distill', '--d2vpr-input-size', '56',
        '--centroid-weight', '1', '--ablate-ramp', 'true',
        '--d2vpr-epochs1', '2', '--d2vpr-epochs2', '1'])
    assert asym_cli.run(args) == 0
    return root / 'out'


def test_report_compares_all_systems(run_dir):
    rep = json.loads((run_dir / 'report.json').read_text())
    assert set(rep['recall']) >= {'gallery_symmetric', 'ours_asym', 'ours_gamma0',
                                  'symmetric_student', 'csd_asym', 'untrained_asym',
                                  'ours_bank50', 'ours_no_centroid', 'distill_asym',
                                  'ours_ramp'}
    assert rep['train']['ours_ramp']['gamma_schedule'] == 'ramp'
    assert rep['train']['ours_asym']['gamma_schedule'] == 'constant'
    # every held-out condition was a training condition here: one 'seen' group, paired rows
    assert list(rep['by_seen']) == ['seen'] and rep['by_seen']['seen']['queries'] == 48
    assert rep['by_seen']['seen']['conditions'] == sorted(CONDS)
    assert 'symmetric_student' in rep['by_seen']['seen']['paired']
    # ours with the centroid term, its ablation without it (the paper's loss) beside it
    assert rep['train']['ours_asym']['centroid_weight'] == 1.0
    assert rep['train']['ours_no_centroid']['centroid_weight'] == 0.0
    for r in rep['recall'].values():
        assert set(r) == {'all', *CONDS}
        assert r['all']['num_queries'] == 48 and 0 <= r['all']['R@1'] <= r['all']['R@10'] <= 100
    # two held-out towns: pooled above, each town on its own beside it
    assert len(rep['recall_by_split']) == 2 and rep['eval']['queries'] == 48
    for by in rep['recall_by_split'].values():
        assert by['ours_asym']['all']['num_queries'] == 24
    assert rep['db_growth']['ours_asym'][0]['db_images'] == 6
    # gallery -> gallery on these easy scenes finds most places
    assert rep['recall']['gallery_symmetric']['all']['R@5'] > 50
    assert rep['train']['ours_bank50']['bank']['places'] == 4
    assert rep['train']['ours_asym']['bank']['places'] == 8
    assert rep['timing']['csd_precompute_s'] >= 0 and rep['timing']['ours_precompute_s'] >= 0
    q, g = rep['models']['query'], rep['models']['gallery']
    assert q['input_size'] == [32, 32] and g['input_size'] == [64, 64]
    assert 0 < q['gflops'] < g['gflops'] and q['latency_ms'] > 0
    assert q['torchscript_latency_ms'] > 0 and g['torchscript_latency_ms'] > 0
    assert q['dim'] == g['dim'] == 1280
    assert rep['onnx']['parity_max_abs_diff'] < 1e-4
    assert {f['floor'] for f in rep['floors']} >= {'asym R@1 >= 90% of gallery R@1'}
    md = (run_dir / 'report.md').read_text()
    assert 'ours: query net -> gallery DB' in md and '| floor |' in md
    assert "without the centroid term (the paper's loss)" in md
    assert '| ours on 50% of the training places (smaller bank) |' in md
    assert 'R@1 per held-out split' in md and '`held2`' in md
    assert (run_dir / 'recall_bars.png').stat().st_size > 0
    assert (run_dir / 'loss_curves.png').stat().st_size > 0
    assert not math.isnan(rep['train']['ours_asym']['epoch_loss'][0])
    # how closely each compatible network reproduces the gallery's descriptor of a query
    comp = rep['compatibility']
    assert {'ours_asym', 'csd_asym', 'untrained_asym'} <= set(comp)
    assert not {'gallery_symmetric', 'symmetric_student'} & set(comp)
    assert all(-1.0 <= v <= 1.0 for v in comp.values()) and 'Compatibility:' in md
    # ours against every other system on the same 48 queries, consistent with the recalls
    pair = rep['paired_r1']['symmetric_student']
    assert 'ours_asym' not in rep['paired_r1'] and 'csd_asym' in rep['paired_r1']
    assert pair['queries'] == 48 and pair['ci_low'] <= pair['diff'] <= pair['ci_high']
    assert pair['diff'] == pytest.approx(rep['recall']['ours_asym']['all']['R@1']
                                         - rep['recall']['symmetric_student']['all']['R@1'])
    assert pair['only_a'] - pair['only_b'] == pytest.approx(48 * pair['diff'] / 100)
    assert '| ours minus | points | 95% CI |' in md


def test_d2vpr_row_beside_ours(run_dir):
    """D2-VPR (distilled to the gallery, then fine-tuned) is a row of the same report, with
    its cost next to ours, and its checkpoint is accepted by the gallery's map."""
    from vpr_ros.models.checkpoint import load_checkpoint
    from vpr_ros.models.runtime import load_encoder
    from vpr_ros.query_pipeline import check_query_compatible
    rep = json.loads((run_dir / 'report.json').read_text())
    assert {'d2vpr_stage1', 'd2vpr'} <= set(rep['recall'])
    assert rep['recall']['d2vpr']['all']['num_queries'] == 48
    h1 = rep['train']['d2vpr_stage1']
    assert h1['method'] == 'distill' and len(h1['epoch_loss']) == 2
    assert h1['epoch_loss'][1] < h1['epoch_loss'][0]  # distillation lowers the MSE
    assert rep['train']['d2vpr']['method'] == 'd2vpr'
    d2 = rep['models']['d2vpr']
    assert d2['model'] == 'd2vpr_vits14' and d2['input_size'] == [56, 56] and d2['dim'] == 1280
    assert d2['params_M'] > rep['models']['query']['params_M'] and d2['latency_ms'] > 0
    assert 'D2-VPR stages 1+2 -> gallery DB' in (run_dir / 'report.md').read_text()
    model, meta = load_checkpoint(str(run_dir / 'd2vpr.pt'))
    compat = dict(meta['compatible_with'])
    assert len(compat.pop('weights_fingerprint')) == 64  # the gallery's weights
    assert compat == {'encoder': 'efficientnet_lite0_gem', 'dim': 1280}
    check_query_compatible(load_encoder(checkpoint=str(run_dir / 'd2vpr.pt')),
                           'efficientnet_lite0_gem', 1280)


def test_gallery_features_are_cached(run_dir):
    assert len(list((run_dir / 'cache').glob('*.npy'))) == 5  # train; DB, queries of 2 towns


def test_checkpoint_compatibility_and_refusal(run_dir):
    from vpr_ros.models.checkpoint import load_checkpoint
    from vpr_ros.models.runtime import load_encoder
    from vpr_ros.query_pipeline import check_query_compatible, IncompatibleQueryNetwork
    model, meta = load_checkpoint(str(run_dir / 'ours_asym.pt'))
    compat = dict(meta['compatible_with'])
    assert len(compat.pop('weights_fingerprint')) == 64  # the gallery's weights
    assert compat == {'encoder': 'efficientnet_lite0_gem', 'dim': 1280}
    assert meta['input_size'] == [32, 32] and meta['extra']['method'] == 'asym'
    assert meta['extra']['train_config']['gamma'] == 15.0
    enc = load_encoder(checkpoint=str(run_dir / 'ours_asym.pt'))
    check_query_compatible(enc, 'efficientnet_lite0_gem', 1280)
    with pytest.raises(IncompatibleQueryNetwork):
        check_query_compatible(enc, 'dinov2_vitb14_boq', 1280)
    with pytest.raises(IncompatibleQueryNetwork):
        check_query_compatible(enc, 'efficientnet_lite0_gem', 512)
    student = load_encoder(checkpoint=str(run_dir / 'symmetric_student.pt'))
    with pytest.raises(IncompatibleQueryNetwork):  # trained without the gallery
        check_query_compatible(student, 'efficientnet_lite0_gem', 1280)


def test_several_training_datasets_keep_their_places(run_dir):
    """--data a,b: one training set whose places stay apart, each dataset's gallery features
    from its own cache entry (the run above already cached this town's)."""
    from vpr_ros.experiments.asym import inputs as asym_inputs
    from vpr_ros.training.asym import AsymTrainConfig
    from vpr_ros.models.runtime import build_torch_model
    train = str(run_dir.parent / 'train')
    cfg = AsymTrainConfig(gallery_model='efficientnet_lite0_gem', gallery_input_size=(64, 64),
                          data=f'{train},{train}', progress=False)
    gallery = build_torch_model(model=cfg.gallery_model, input_size=(64, 64))[0]
    rows, feats, meta = asym_inputs.training_rows(cfg, gallery, str(run_dir / 'cache'))
    assert meta['cached'] and meta['num_images'] == 64 == len(rows.paths) == len(feats)
    assert sorted(set(rows.places.tolist())) == list(range(16))   # 8 + 8 places, not 8
    assert np.array_equal(rows.places[32:], rows.places[:32] + 8)
    assert np.array_equal(feats[:32], feats[32:])


def test_start_from_student_trains_the_student_first(tmp_path, monkeypatch):
    """--start-from-student: the student is trained first and ours and CSD start from its
    weights (seen by the training function); ours on half the places starts from a student
    trained on those places; without the symmetric baseline it is refused."""
    from vpr_ros.cli import train_asym as asym_cli
    from vpr_ros.training import asym
    train, held = _write_towns(tmp_path)
    starts, real = {}, asym.train_query_network

    def spy(cfg, data, tag='', model=None, **kw):
        starts[tag] = {k: v.clone() for k, v in model.backbone.state_dict().items()}
        model, hist = real(cfg, data, tag=tag, model=model, **kw)
        if tag.startswith('symmetric_'):
            starts[tag + '_after'] = {k: v.clone() for k, v in model.state_dict().items()
                                      if k.startswith('backbone.')}
            starts[tag + '_places'] = len(np.unique(data.labels))
        return model, hist

    monkeypatch.setattr(asym, 'train_query_network', spy)
    parser = argparse.ArgumentParser()
    asym_cli.add_arguments(parser)
    flags = ['--gallery-model', 'efficientnet_lite0_gem', '--gallery-input-size', '64',
             '--query-model', 'mobilenetv3_small', '--input-size', '32', '--data', str(train),
             '--eval', str(held[0]), '--out', str(tmp_path / 'out'), '--epochs', '1',
             '--batch-size', '16', '--bank-fractions', '0.5', '--latency-runs', '2',
             '--progress', 'false', '--eval-radius-m', '10', '--ablate-gamma0', 'false',
             '--ablate-centroid', 'false', '--cost-growth', '', '--start-from-student', 'true',
             '--growth-distractors', '']
    with pytest.raises(SystemExit, match='needs the symmetric'):
        asym_cli.run(parser.parse_args(flags + ['--baselines', 'csd']))
    assert asym_cli.run(parser.parse_args(flags + ['--baselines', 'csd,symmetric',
                                                   '--gallery-whiten', '4'])) == 0
    assert list(starts)[:3] == ['symmetric_student', 'symmetric_student_after',
                                'symmetric_student_places']

    def same(tag, after):
        return all(torch.equal(starts[tag][k[len('backbone.'):]], v) for k, v in after.items())
    after = starts['symmetric_student_after']
    assert same('ours_asym', after) and same('csd_asym', after)
    assert not same('symmetric_student', after)
    # the half-bank row: a student on the same 4 of 8 places first, ours from that student
    assert starts['symmetric_student_places'] == 8 and starts['symmetric_bank50_places'] == 4
    assert same('ours_bank50', starts['symmetric_bank50_after'])
    assert not same('ours_bank50', after)
    rep = json.loads((tmp_path / 'out' / 'report.json').read_text())
    assert rep['timing']['shared_student_start_s'] == \
        rep['train']['symmetric_student']['train_seconds'] > 0
    # whitened: ours and ours on half the places (its own fit), never CSD or the students
    assert {t for t, h in rep['train'].items() if 'whitening' in h} == {'ours_asym', 'ours_bank50'}
    # ours fine-tunes the student at 2x lr and lr_min (the default scale); the rest keep lr
    lr, lr_min = rep['config']['lr'], rep['config']['lr_min']
    tr = rep['train']
    assert tr['ours_asym']['lr'] == 2 * lr and tr['ours_asym']['lr_min'] == 2 * lr_min
    assert tr['ours_bank50']['lr'] == 2 * lr
    assert tr['csd_asym']['lr'] == tr['symmetric_student']['lr'] == lr
    md = (tmp_path / 'out' / 'report.md').read_text()
    assert 'Two stages' in md and 'db_growth' not in rep  # --growth-distractors ''
    assert f'Ours fine-tunes it at lr {2 * lr:g}' in md
    assert '| query net alone on 50% of the training places (student -> student DB) |' in md
    # --student-checkpoint: that student is reused (not trained), ours starts from it, and
    # the in-batch query->gallery term trains too; a student of another input size is refused
    student = tmp_path / 'out' / 'symmetric_student.pt'
    starts.clear()
    reuse = flags + [  # argparse: the later --out wins
        '--out', str(tmp_path / 'out2'), '--baselines', 'symmetric', '--bank-fractions', '',
        '--student-checkpoint', str(student), '--cross-weight', '0.5', '--gallery-whiten', '6']
    with pytest.raises(SystemExit, match='does not fit this run: input_size'):
        asym_cli.run(parser.parse_args(reuse + ['--input-size', '40']))
    assert asym_cli.run(parser.parse_args(reuse)) == 0
    assert list(starts) == ['ours_asym'] and same('ours_asym', after)
    rep = json.loads((tmp_path / 'out2' / 'report.json').read_text())
    assert rep['train']['symmetric_student']['loaded_from'] == str(student)
    assert rep['config']['cross_weight'] == 0.5 and 'symmetric_student' in rep['recall']
    assert (tmp_path / 'out2' / 'symmetric_student.pt').is_file()
    md = (tmp_path / 'out2' / 'report.md').read_text()
    assert 'not trained here' in md and 'MS term weight 0.5' in md
    # --gallery-whiten: ours trained in 6 whitened dimensions, saved folded to the map's width
    from vpr_ros.models.checkpoint import load_checkpoint
    assert rep['whitening']['dim'] == 6 and 0 < rep['whitening']['explained_variance'] <= 1
    ours, meta = load_checkpoint(str(tmp_path / 'out2' / 'ours_asym.pt'))
    assert ours.dim == rep['gallery_features']['dim'] == meta['compatible_with']['dim']
    assert meta['extra']['history']['whitening']['dim'] == 6
    assert 'PCA-whitened to 6' in md
    # --warm-start-mode reverse_place: the student's ranking mapped into the gallery's space
    starts.clear()
    with pytest.raises(SystemExit, match='needs --start-from-student true'):
        asym_cli.run(parser.parse_args(reuse + ['--warm-start-mode', 'reverse']))
    rev = flags + ['--out', str(tmp_path / 'out3'), '--baselines', 'symmetric',
                   '--bank-fractions', '',
                   '--student-checkpoint', str(student),
                   '--warm-start-mode', 'reverse_place', '--warm-start-ridge', '0.01']
    assert asym_cli.run(parser.parse_args(rev)) == 0
    warm = json.loads((tmp_path / 'out3' / 'report.json').read_text()
                      )['train']['ours_asym']['warm_start']
    assert warm['mode'] == 'reverse_place' and warm['images'] > 0
    md = (tmp_path / 'out3' / 'report.md').read_text()
    assert 'reverse_place least-squares warm start' in md


def _evaluate_asym(*flags):
    from vpr_ros.cli import evaluate_asym as asym_eval_cli
    parser = argparse.ArgumentParser()
    asym_eval_cli.add_arguments(parser)
    return asym_eval_cli.run(parser.parse_args(['--progress', 'false', *flags]))


def test_growth_rows_include_the_student_on_its_own_descriptors(run_dir):
    rep = json.loads((run_dir / 'report.json').read_text())
    growth = rep['db_growth']
    plain = {'gallery_symmetric', 'ours_asym', 'csd_asym', 'symmetric_student'}
    assert set(growth) == plain | {t + '_csls' for t in plain}
    # one of the 8 training places (4 images) is the hubness reference, kept out of the map
    assert rep['hubness'] == {'k': 4, 'reference_images': 4}
    assert rep['db_growth_source'].startswith('the 28 training images (the 4 images of the')
    for rows in growth.values():  # 6 DB images per town, then + 10/30/100% of 28
        assert [r['db_images'] for r in rows] == [6, 9, 14, 34]
        assert rows[-1]['R@1'] <= rows[0]['R@1']  # distractors can only take matches away
    assert 'Map growth: each held-out DB plus the 28 training images' in \
        (run_dir / 'report.md').read_text()


def test_hubness_rows_beside_the_plain_ones(run_dir):
    """Every compared system also searched with the map-side hubness correction: its own row,
    ours against each system again, and the two recall floors with the better search."""
    rep = json.loads((run_dir / 'report.json').read_text())
    for tag in ('gallery_symmetric', 'ours_asym', 'csd_asym', 'symmetric_student'):
        r = rep['recall'][tag + '_csls']['all']
        assert r['num_queries'] == 48 and 0 <= r['R@1'] <= r['R@10'] <= 100
    assert 'untrained_asym_csls' not in rep['recall']
    assert not any(t.endswith('_csls') for t in rep['compatibility'])
    pair = rep['paired_r1_csls']['symmetric_student_csls']
    assert pair['diff'] == pytest.approx(rep['recall']['ours_asym_csls']['all']['R@1']
                                         - rep['recall']['symmetric_student_csls']['all']['R@1'])
    floors = [f['floor'] for f in rep['floors']]
    assert sum('better search' in f for f in floors) == 2
    md = (run_dir / 'report.md').read_text()
    assert '| ours: query net -> gallery DB + hubness correction (CSLS) |' in md
    assert 'Ours with the hubness correction against each system' in md


def test_evaluate_asym_reproduces_the_run_and_takes_other_distractors(run_dir, tmp_path):
    """`vpr-ros evaluate-asym` on the run's checkpoints gives the run's own numbers on one of
    its towns, and grows the map with another town's images."""
    held, held2 = (run_dir.parent / t / 'test' for t in ('held', 'held2'))
    out = tmp_path / 'eval'
    assert _evaluate_asym('--run', str(run_dir), '--eval', str(held2), '--out', str(out),
                          '--distractors', str(held), '--eval-radius-m', '10',
                          '--cache-dir', str(tmp_path / 'cache')) == 0
    rep = json.loads((out / 'report.json').read_text())
    train_rep = json.loads((run_dir / 'report.json').read_text())
    by_split = train_rep['recall_by_split'][str(held2)]
    assert set(rep['recall']) == set(by_split)
    for tag in ('ours_asym', 'symmetric_student', 'csd_asym', 'gallery_symmetric', 'd2vpr'):
        assert rep['recall'][tag]['all'] == pytest.approx(by_split[tag]['all'])
    assert rep['db_growth_source'] == '30 images of held'  # its 6 DB + 24 queries
    assert [r['db_images'] for r in rep['db_growth']['ours_asym']] == [6, 9, 15, 36]
    assert rep['evaluated_run'] == str(run_dir) and rep['num_train_places'] == 8
    md = (out / 'report.md').read_text()
    assert 'Re-evaluation of the checkpoints' in md and '| floor |' in md
    assert (out / 'gallery_growth.png').stat().st_size > 0
    # the run's own training images as distractors: the run's growth rows again
    out2 = tmp_path / 'eval2'
    _evaluate_asym('--run', str(run_dir), '--eval', ','.join(map(str, (held, held2))),
                   '--out', str(out2), '--distractors', 'train', '--eval-radius-m', '10',
                   '--systems', 'ours_asym,symmetric_student',
                   '--cache-dir', str(run_dir / 'cache'))
    rep2 = json.loads((out2 / 'report.json').read_text())
    assert set(rep2['recall']) == {'gallery_symmetric', 'untrained_asym', 'ours_asym',
                                   'symmetric_student', 'gallery_symmetric_csls',
                                   'ours_asym_csls', 'symmetric_student_csls'}
    for tag in ('ours_asym', 'symmetric_student', 'gallery_symmetric'):
        new, old = rep2['db_growth'][tag], train_rep['db_growth'][tag]
        assert [r['db_images'] for r in new] == [r['db_images'] for r in old]
        assert [r['R@1'] for r in new] == pytest.approx([r['R@1'] for r in old])


def test_evaluate_asym_refuses_bad_input(run_dir, tmp_path):
    held = str(run_dir.parent / 'held' / 'test')
    with pytest.raises(SystemExit, match='--eval'):
        _evaluate_asym('--run', str(run_dir))
    with pytest.raises(SystemExit, match='no query checkpoints'):
        _evaluate_asym('--run', str(tmp_path), '--eval', held)
    with pytest.raises(SystemExit, match=r"named \['ours_typo'\]"):
        _evaluate_asym('--run', str(run_dir), '--eval', held, '--systems', 'ours_typo')
    with pytest.raises(SystemExit, match=r"no checkpoint \['ours_typo'\]"):
        _evaluate_asym('--run', str(run_dir), '--eval', held, '--systems', 'ours_asym,ours_typo')
    with pytest.raises(ValueError, match='growth fractions'):
        _evaluate_asym('--run', str(run_dir), '--eval', held, '--growth-fractions', '0,2')
    with pytest.raises(FileNotFoundError, match='distractor folder'):
        _evaluate_asym('--run', str(run_dir), '--eval', held, '--out', str(tmp_path / 'o'),
                       '--distractors', str(tmp_path / 'nowhere'))


def test_hubness_reference_files_for_the_matcher(run_dir, tmp_path):
    """train asym writes ours' reference; `vpr-ros hubness-reference` makes one for any query
    checkpoint; both name the query network and the map model the matcher checks."""
    from vpr_ros.cli import main
    from vpr_ros.hubness import load_reference
    desc, meta = load_reference(run_dir / 'ours_asym.hubness.npz')
    assert desc.shape == (4, 1280)
    assert meta['encoder'] == 'mobilenetv3_small' and meta['compatible_with'] == \
        'efficientnet_lite0_gem'
    out = tmp_path / 'ref.npz'
    assert main(['hubness-reference', '--checkpoint', str(run_dir / 'ours_asym.pt'),
                 '--data', str(run_dir.parent / 'train'), '--out', str(out),
                 '--max-images', '20', '--k', '5']) == 0
    desc2, meta2 = load_reference(out)
    assert desc2.shape == (20, 1280) and meta2['k'] == 5
    assert meta2['compatible_with'] == 'efficientnet_lite0_gem'
    np.testing.assert_allclose(np.linalg.norm(desc2, axis=1), 1.0, atol=1e-2)
    with pytest.raises(SystemExit, match='required'):
        main(['hubness-reference', '--checkpoint', str(run_dir / 'ours_asym.pt')])


def test_gallery_features_go_to_the_configured_executor(monkeypatch):
    """`train asym --gallery-executor ray --gallery-workers 3` reaches the feature cache (the
    Ray path itself is tested in test_mapstore_ray.py)."""
    import numpy as np
    from vpr_ros.training import gallery_cache
    from vpr_ros.training.asym import AsymTrainConfig
    from vpr_ros.experiments.asym.heldout import cached_features_fn
    seen = {}

    def fake(model, paths, cache, *args, **kw):
        seen.update(kw)
        return np.zeros((len(paths), 4), np.float32), {}
    monkeypatch.setattr(gallery_cache, 'cached_gallery_features', fake)
    cfg = AsymTrainConfig(gallery_executor='ray', gallery_workers=3)
    assert cached_features_fn(None, '/tmp/x', cfg)(['a', 'b']).shape == (2, 4)
    assert seen['executor'] == 'ray' and seen['workers'] == 3
