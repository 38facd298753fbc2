"""``vpr-ros world``: flags map onto WorldConfig, output summary, benchmark table."""
import pytest

from vpr_ros.cli import main
from vpr_ros.io.vg import list_vg_folder


def test_world_cli_writes_vg(tmp_path, capsys):
    out = tmp_path / 'w'
    assert main(['world', '--seed', '5', '--out', str(out), '--places', '4', '--size', '48x32',
                 '--supersample', '1', '--conditions', 'day,fog', '--formats', 'vg',
                 '--split', 'val', '--quiet']) == 0
    text = capsys.readouterr().out
    assert 'world seed 5: 4 places, 8 frames' in text and 'ms/frame' in text
    recs = list_vg_folder(out / 'val' / 'queries')
    assert [r.note for r in recs] == ['fog'] * 4
    assert not (out / 'Images').exists() and not (out / 'bags').exists()


def test_world_cli_bench_prints_a_table(capsys):
    assert main(['world', '--bench', '--bench-frames', '2', '--size', '48x32',
                 '--supersample', '1', '--conditions', 'day,night']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith('render benchmark 48x32')
    rows = {ln.split()[0]: float(ln.split()[1]) for ln in lines[2:]}
    assert set(rows) == {'day', 'night'} and all(v > 0 for v in rows.values())


def test_world_cli_rejects_unknown_condition(tmp_path):
    with pytest.raises(ValueError, match='unknown condition'):
        main(['world', '--out', str(tmp_path), '--conditions', 'day,snow', '--quiet'])


def test_world_cli_difficulty(capsys):
    assert main(['world', '--difficulty', '--places', '8', '--size', '64x48',
                 '--supersample', '1', '--conditions', 'day,night']) == 0
    lines = capsys.readouterr().out.splitlines()
    chance = float(lines[0].rsplit(' ', 1)[1])
    rec = {ln.split()[0]: float(ln.split()[1]) for ln in lines[1:]}
    assert set(rec) == {'day', 'night'} and 0 < chance < 1
    assert rec['day'] > chance  # same condition, nearby viewpoints: better than guessing


def test_world_cli_bag_without_gps_reads_with_the_project_reader(tmp_path, capsys):
    from vpr_ros.io.bags import BagReader
    out = tmp_path / 'w'
    assert main(['world', '--seed', '2', '--out', str(out), '--places', '3', '--size', '48x32',
                 '--supersample', '1', '--formats', 'bag', '--bag-storage', 'sqlite3',
                 '--conditions', 'day', '--no-bag-gps', '--rate-hz', '2', '--speed-mps', '10',
                 '--quiet']) == 0
    assert 'bags' in capsys.readouterr().out
    bag = out / 'bags' / 'day_sqlite3'  # one condition given: the bag uses it
    with BagReader(bag, require_pose=True) as reader:
        assert reader.pose_topic == '/odom'
        frames = list(reader.frames())
    assert len(frames) == 5  # 20 m of route at 5 m per frame, both ends included
    assert all(f.pose is not None and f.rgb.shape == (32, 48, 3) for f in frames)
