"""vpr-ros evaluate --live / --bench: the real nodes over DDS agree with the offline pipeline."""
import csv
import json

import pytest

from node_fixtures import build_test_map, place_images
from test_evaluation_offline import EXPECTED_R1, FRAMES, N_PLACES, SPACING, write_eval_bag
from vpr_ros.cli import main


def _frames(path):
    with open(path) as f:
        return {int(r['index']): r for r in csv.DictReader(f)}


def test_live_replay_matches_offline(tmp_path, test_model, capsys):
    model, size = test_model
    images = place_images(N_PLACES, size=(72, 96))
    build_test_map(tmp_path / 'map', model, size, images, spacing_m=SPACING)
    bag = write_eval_bag(tmp_path / 'bag', images, 'sqlite3')
    out = tmp_path / 'r'
    code = main(['evaluate', '--map', str(tmp_path / 'map'), '--bag', str(bag),
                 '--input-size', *map(str, size), '--threads', '1', '--out', str(out),
                 '--bench', '--rate', '3'])
    printed = capsys.readouterr().out
    assert code == 0, printed
    offline = json.loads((out / 'report.json').read_text())
    live = json.loads((out / 'live' / 'report.json').read_text())
    assert offline['mode'] == 'offline' and live['mode'] == 'live'
    assert offline['recall_at']['1'] == EXPECTED_R1
    assert live['num_frames'] == len(FRAMES)
    # replayed with reliable QoS: every frame reaches the encoder; what it drops it counts
    stats = live['input']['query_encoder_stats']
    assert stats['received'] == len(FRAMES) and stats['errors'] == 0, stats
    assert stats['encoded'] + stats['dropped'] == stats['received'], stats
    # a played-slowly tiny bag loses nothing; every answered frame agrees with offline
    assert live['frames_dropped'] <= 1
    off_f, live_f = _frames(out / 'frames.csv'), _frames(out / 'live' / 'frames.csv')
    answered = [i for i, r in live_f.items() if r['answered'] == '1']
    assert len(answered) >= len(FRAMES) - 1
    for i in answered:
        assert live_f[i]['top1_id'] == off_f[i]['top1_id']
        assert live_f[i]['correct_top1'] == off_f[i]['correct_top1']
    # the matcher's temporal filter (default settings) saw the same frames in the same order
    # as offline, up to the first dropped frame: same confidence (float32) and decision
    assert live['temporal_filter'] is True and offline['temporal_filter'] is True
    for i in sorted(live_f):
        if live_f[i]['answered'] != '1':
            break
        assert abs(float(live_f[i]['confidence']) - float(off_f[i]['confidence'])) < 1e-4
        assert live_f[i]['localized'] == off_f[i]['localized']
    if live['frames_dropped'] == 0:
        assert live['recall_at'] == offline['recall_at']
    for stage in ('publish_to_descriptor', 'descriptor_to_match', 'end_to_end'):
        assert live['latency_ms'][stage]['p50'] > 0
    assert live['latency_ms']['end_to_end']['p50'] >= live['latency_ms']['inference']['p50']
    if live['frames_dropped'] == 0:  # priors recorded from vpr/pose_prior agree with offline
        assert live['pose_error']['all_answered']['position_m']['p50'] == pytest.approx(
            offline['pose_error']['all_answered']['position_m']['p50'], abs=1e-3)
    assert (out / 'live' / 'trajectory.png').is_file()
    # the benchmark prints both modes' frames/s side by side
    table = printed[printed.index('mode'):]
    assert 'offline' in table and 'live' in table and 'frames/s' in table
    bench = json.loads((out / 'bench.json').read_text())
    assert [b['mode'] for b in bench] == ['offline', 'live']
    assert all(b['frames_per_s'] > 0 for b in bench)
    assert bench[1]['frames_per_s'] <= 3.0 * 1.2  # paced at --rate 3
