"""The benchmarks' default pair (shipped query network + its gallery, else symmetric) and the
robot-install helpers of ``vpr-ros bench-robot`` (the full run is measured, not tested)."""
import argparse
import os

from vpr_ros.bench import BenchConfig, pair, robot


def test_without_a_shipped_query_network_the_gallery_model_runs_symmetric(monkeypatch):
    monkeypatch.setattr(pair, 'packaged_queries', lambda: [])
    p = pair.shipped_pair()
    assert (p.query, p.gallery, p.mode) == ('efficientnet_lite0_vpr',) * 2 + ('symmetric',)
    assert 'no trained query network' in p.note


def test_a_shipped_query_network_brings_its_gallery(monkeypatch, tmp_path):
    from vpr_ros.models import create_model
    from vpr_ros.models.checkpoint import save_checkpoint
    path = tmp_path / 'efficientnet_lite0_query_x.safetensors'
    save_checkpoint(str(path), create_model('mobilenetv3_small', dim=16, input_size=32),
                    {'compatible_with': {'encoder': 'efficientnet_lite2_vpr24', 'dim': 1280}})
    monkeypatch.setattr(pair, 'packaged_queries', lambda: [
        ('efficientnet_lite0_query_missing', tmp_path / 'absent.safetensors'),
        ('efficientnet_lite0_query_x', path)])
    p = pair.shipped_pair()
    assert (p.query, p.gallery, p.mode) == ('efficientnet_lite0_query_x',
                                            'efficientnet_lite2_vpr24', 'asymmetric')
    assert p.label == 'efficientnet_lite0_query_x -> efficientnet_lite2_vpr24 (asymmetric)'
    lines = []
    cfg = pair.resolve_models(BenchConfig(), lines.append)
    assert (cfg.query_model, cfg.gallery_model) == (p.query, p.gallery)
    assert 'efficientnet_lite0_query_x (query)' in lines[0] and 'trained against' in lines[0]
    given = BenchConfig(query_model='mobilenetv3_small', gallery_model='dinov2_vits14_gem')
    assert pair.resolve_models(given, lines.append) is given


def test_registered_packaged_queries_are_found():
    names = [n for n, _ in pair.packaged_queries()]
    assert all(n.startswith(pair.PREFERRED_QUERY) for n in names[:1])


def test_tree_size_counts_hard_links_once(tmp_path):
    (tmp_path / 'a').write_bytes(b'x' * 300_000)
    os.link(tmp_path / 'a', tmp_path / 'b')
    assert 0.28 <= robot.tree_size_mb(tmp_path) < 0.6


def test_robot_env_runs_this_tree_with_the_robot_venv(tmp_path):
    env = robot.robot_env(tmp_path / 'venv', {'PATH': '/usr/bin', 'PYTHONHOME': '/x'})
    assert env['PATH'].split(os.pathsep)[0] == str(tmp_path / 'venv' / 'bin')
    assert 'PYTHONHOME' not in env and env['VIRTUAL_ENV'] == str(tmp_path / 'venv')
    paths = env['PYTHONPATH'].split(os.pathsep)
    assert paths[0] == str(robot.SOURCE_ROOT) and paths[1].endswith('site-packages')
    assert (robot.interfaces_prefix() / 'lib').is_dir()
    assert (robot.SOURCE_ROOT / 'requirements-robot.txt').is_file()
    lines = (robot.SOURCE_ROOT / 'requirements-robot.txt').read_text().lower().splitlines()
    names = [ln.split('#')[0].split('>')[0].split('[')[0].strip() for ln in lines]
    names = [n for n in names if n]
    assert 'onnxruntime' in names and 'faiss-cpu' in names
    assert not [n for n in names if n.startswith(('torch', 'timm'))]


def test_bench_robot_options_parse():
    from vpr_ros.cli import bench_robot
    parser = argparse.ArgumentParser()
    bench_robot.add_arguments(parser)
    args = parser.parse_args(['--venv', '/tmp/v', '--duration-s', '5', '--frame-size', '240',
                              '320'])
    assert args.venv == '/tmp/v' and args.frame_size == [240, 320] and args.max_rss_mb == 250


def test_the_bench_query_export_is_keyed_by_the_packaged_weights(tmp_path, monkeypatch):
    """Shipping new weights under the same name must not reuse the previous export."""
    import vpr_ros.models.packaged as packaged
    from vpr_ros.graph.bench_graph import packaged_weights_tag
    monkeypatch.setattr(packaged, 'WEIGHTS_DIR', tmp_path)
    assert packaged_weights_tag('efficientnet_lite0_query_x') == 'init'
    (tmp_path / 'efficientnet_lite0_query_x.safetensors').write_bytes(b'first')
    first = packaged_weights_tag('efficientnet_lite0_query_x')
    (tmp_path / 'efficientnet_lite0_query_x.safetensors').write_bytes(b'second')
    assert first != packaged_weights_tag('efficientnet_lite0_query_x') and len(first) == 12
