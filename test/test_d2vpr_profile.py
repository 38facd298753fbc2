"""``vpr-ros profile``: parameter and MAC counts, incl. the D2-VPR paper's cost table."""
import argparse
import json

import pytest

from vpr_ros.cli import profile as profile_cli
from vpr_ros.models import profile


def test_paper_cost_table_and_offset_saving():
    rows = profile.d2vpr_rows()
    once, repeated, paper_s, crica, paper_t = rows
    # counted as the paper does (released layout), the numbers are the paper's
    assert round(paper_s['params'] / 1e6, 2) == 27.21 and paper_s['paper_params_m'] == 27.21
    assert round(paper_s['macs'] / 1e9, 2) == 9.64
    assert round(paper_t['params'] / 1e6, 2) == 106.76
    assert round(paper_t['macs'] / 1e9, 2) == 25.66
    # computing the offsets once: same parameters, ~2.4 GMACs (one 1536->512->4 MLP over
    # 256 positions is 0.2 GMACs; the released code runs it 13 times)
    assert once['params'] == repeated['params']
    per_run = 256 * (1536 * 512 + 512 * 4)
    assert repeated['macs'] - once['macs'] == pytest.approx(12 * per_run, rel=1e-3)
    assert crica['params'] < paper_t['params']  # no cross-image encoder by default
    assert '25.1%' in profile.offset_saving(rows)


def test_cli_markdown_and_json(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    profile_cli.add_arguments(parser)
    out = tmp_path / 'p.json'
    args = parser.parse_args(['--models', 'd2vpr_vits14', 'mobilenetv3_small', '--json',
                              str(out), '--no-d2vpr'])
    assert profile_cli.run(args) == 0
    text = capsys.readouterr().out
    assert '| d2vpr_vits14 | query | 224x224 | 10752 | 26.78 | 7.22 |' in text
    rows = json.loads(out.read_text())['models']
    assert [r['name'] for r in rows] == ['d2vpr_vits14', 'mobilenetv3_small']
    assert rows[1]['macs'] > 0 and 'd2vpr' not in json.loads(out.read_text())


def test_unbuildable_model_is_reported_not_fatal():
    row = profile.profile_model('d2vpr_vits14', no_such_option=1)
    assert 'error' in row and 'unknown options' in row['error']
    assert 'not built' in profile.markdown([row])
