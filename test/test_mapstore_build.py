"""build-map (VG folder, bag, resume after interruption), map-info and a bench-map smoke run."""
import json

import cv2
import numpy as np
import pytest
import torch

from vpr_ros.cli import main
from vpr_ros.io.vg import format_vg_name, VGRecord
from vpr_ros.mapstore import MapError, MapStore
from vpr_ros.mapstore.build import build_map, BuildConfig

MODEL = 'mobilenetv3_small'


def _vg(tmp_path, n=12, corrupt=True):
    db = tmp_path / 'vg' / 'database'
    db.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        r = VGRecord(path='', utm_e=500000.0 + 3 * i, utm_n=4000000.0, zone_number=33,
                     zone_letter='T', heading=90.0)
        cv2.imwrite(str(db / format_vg_name(r)), rng.integers(0, 255, (40, 52, 3), np.uint8))
    if corrupt:
        (db / '@500100.00@4000000.00@33@T@@@@@@@@@@@.jpg').write_bytes(b'\xff\xd8 cut')
    return tmp_path / 'vg'


def test_build_map_cli_vg_and_map_info(tmp_path, capsys):
    vg = _vg(tmp_path)
    torch.manual_seed(0)
    rc = main(['build-map', '--model', MODEL, '--source', 'vg', '--input', str(vg), '--out',
               str(tmp_path / 'map'), '--input-size', '32', '32', '--batch-size', '5',
               '--no-progress', '--json', '--robot-id', 'r1', '--session', 's1',
               '--allow-random-weights'])  # a random query model: speed of the test only
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary['places'] == 12 and summary['images_failed'] == 1
    assert summary['encoder'] == MODEL and summary['dim'] == 512 and summary['index'] == 'Flat'
    store = MapStore.open(tmp_path / 'map', expected_encoder=MODEL, expected_dim=512)
    assert store.origin['zone_number'] == 33 and not (tmp_path / 'map' / 'work').exists()
    np.testing.assert_allclose(store.positions([4])[0], [12.0, 0.0, 0.0])
    assert main(['map-info', str(tmp_path / 'map'), '--json']) == 0
    info = json.loads(capsys.readouterr().out)
    assert info['manifest']['num_places'] == 12 and info['stats']['robots'] == {'r1': 12}
    assert main(['build-map', '--model', MODEL, '--input', str(vg), '--out',
                 str(tmp_path / 'map'), '--no-progress']) == 1
    assert 'already holds a map' in capsys.readouterr().err


def test_build_map_resumes_after_interruption(tmp_path):
    vg = _vg(tmp_path, n=20, corrupt=False)
    base = dict(model=MODEL, allow_random_weights=True, source='vg', input=str(vg),
                input_size=(32, 32), batch_size=4,
                checkpoint_every=8, progress=False)

    def stop(done):
        raise KeyboardInterrupt(f'interrupted after {done}')

    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        build_map(BuildConfig(out=str(tmp_path / 'a'), **base), on_checkpoint=stop)
    assert len(list((tmp_path / 'a' / 'work').glob('chunk-*.npz'))) == 1
    assert not (tmp_path / 'a' / 'manifest.json').exists()
    torch.manual_seed(0)
    resumed = build_map(BuildConfig(out=str(tmp_path / 'a'), **base))
    assert resumed['images_resumed'] == 8 and resumed['images_encoded_now'] == 12
    torch.manual_seed(0)
    fresh = build_map(BuildConfig(out=str(tmp_path / 'b'), **base))
    assert fresh['images_resumed'] == 0 and fresh['places'] == resumed['places'] == 20
    a, b = MapStore.open(tmp_path / 'a'), MapStore.open(tmp_path / 'b')
    ids = np.arange(20)
    np.testing.assert_allclose(a.descriptors_of(ids), b.descriptors_of(ids), atol=2e-3)
    with pytest.raises(KeyboardInterrupt):
        build_map(BuildConfig(out=str(tmp_path / 'c'), **base), on_checkpoint=stop)
    with pytest.raises(MapError, match='other settings.*input_size'):
        build_map(BuildConfig(out=str(tmp_path / 'c'), **{**base, 'input_size': (48, 48)}))


def test_build_map_from_mcap_bag(tmp_path):
    from vpr_ros.io.bag_writer import write_bag
    rng = np.random.default_rng(1)
    imgs = [(10.0 + i, rng.integers(0, 255, (30, 40, 3), np.uint8)) for i in range(10)]
    poses = [(10.0 + 0.5 * i, 1.5 * i, 0.0, 0.0) for i in range(20)]
    bag = write_bag(tmp_path / 'bag', imgs, poses, storage='mcap')
    summary = build_map(BuildConfig(model=MODEL, allow_random_weights=True, source='bag',
                                    input=str(bag),
                                    out=str(tmp_path / 'map'), input_size=(32, 32),
                                    keyframe_dist=5.0, robot_id='rob', progress=False,
                                    dtype='float32', index='HNSW16'))
    assert summary['places'] == 5 and summary['index'] == 'HNSW16'  # images every 3 m
    store = MapStore.open(tmp_path / 'map')
    assert store.positions(np.arange(5))[:, 0].tolist() == [0.0, 6.0, 12.0, 18.0, 24.0]
    assert store.get_places([1])[0].session == 'bag' and store.stats()['robots'] == {'rob': 5}


def test_bench_map_smoke(tmp_path, capsys):
    from vpr_ros.bench.map_models import parse_configs
    assert parse_configs('768:10k,1M;8448:2k') == [(10000, 768), (10**6, 768), (2000, 8448)]
    out = tmp_path / 'bench.json'
    assert main(['bench-map', '--models', '--configs', '32:1500', '--indexes', 'Flat,HNSW16',
                 '--queries', '40', '--work', str(tmp_path / 'w'), '--out', str(out)]) == 0
    rows = json.loads(out.read_text())['store']
    assert [r['index'] for r in rows] == ['Flat', 'HNSW16']
    flat = rows[0]
    assert flat['n'] == 1500 and flat['r1'] > 0.9 and flat['latency_p99_ms'] > 0
    assert flat['rss_after_load_mb'] > 0 and '| 1500 | 32 | Flat |' in capsys.readouterr().out
