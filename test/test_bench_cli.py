"""Smoke test of ``vpr-ros bench`` on tiny settings: every section present, floors evaluated.

Speed is measured by the command itself, never asserted here; only structure and sanity.
"""
import json
import subprocess
import sys

from ros_harness import python_env

TINY = ['--map-sizes', '2k', '--dim', '64', '--matcher-dims', '64',
        '--matcher-index', 'IVF16,PQ8x4,Rerank50', '--matcher-queries', '40',
        '--exact-queries', '3', '--query-model', 'mobilenetv3_small',
        '--gallery-model', 'dinov2_vits14_gem', '--reference-models', '--input-size', '56',
        '--node-input-size', '64', '--model-runs', '4', '--threads', '1',
        '--frame-size', '96', '128', '--duration-s', '3', '--warmup-s', '1', '--drain-s', '2',
        # a graph that does not come up fails inside pytest's 300 s, with the nodes' logs
        '--startup-timeout-s', '120']


def test_bench_tiny_run_writes_every_section(tmp_path):
    out = tmp_path / 'bench'
    proc = subprocess.run([sys.executable, '-m', 'vpr_ros', 'bench', '--out', str(out),
                           '--cache', str(tmp_path / 'cache'), *TINY],
                          capture_output=True, text=True, env=python_env(), timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads((out / 'bench.json').read_text())
    for key in ('machine', 'load_start', 'load_end', 'models', 'matcher', 'node',
                'end_to_end', 'memory', 'floors', 'markdown'):
        assert key in res, key
    assert res['machine']['cores'] >= 1 and res['machine']['faiss']
    rows = res['models']['rows']
    assert [r['role'] for r in rows] == ['query', 'gallery']
    assert all(r['torch_p50_ms'] > 0 and r['torchscript_p50_ms'] > 0 and r['ort_p50_ms'] > 0
               for r in rows)
    q, g = rows
    cols = ('torch_p50_ms', 'torchscript_p50_ms', 'ort_p50_ms')
    ratios = res['models']['gallery_over_query']
    assert ratios['torchscript'] == round(g['torchscript_p50_ms'] / q['torchscript_p50_ms'], 1)
    assert ratios['best_vs_best'] == round(min(g[c] for c in cols) / min(q[c] for c in cols), 1)
    (m,) = res['matcher']
    assert m['n'] == 2000 and m['dim'] == 64 and m['index'] == 'IVF16,PQ8x4,Rerank50'
    assert 0 < m['p50_ms'] <= m['p99_ms'] and 0 < m['exact_p50_ms'] <= m['exact_p99_ms']
    assert 0 <= m['r1'] <= 1 and abs(m['r1_loss'] - (m['exact_r1'] - m['r1'])) < 1e-6
    # the same search with the matcher's hubness correction, first sight and cached
    assert m['hubness_candidates'] == 50 and m['hubness_refs'] == 1440
    assert 0 < m['hubness_first_p50_ms'] <= m['hubness_first_p99_ms']
    assert 0 < m['hubness_cached_p50_ms'] <= m['hubness_cached_p99_ms']
    node, e2e = res['node'], res['end_to_end']
    assert node['frames'] > 0 and node['received'] > 0 and node['descriptors_per_s'] > 0
    assert node['encoded'] + node['dropped'] <= node['received'] + 1
    assert e2e['with_prior'] > 0 and e2e['dropped'] == e2e['frames'] - e2e['with_prior']
    assert 0 < e2e['p50_ms'] <= e2e['p95_ms'] <= e2e['p99_ms'] <= e2e['max_ms']
    rss = res['memory']['rss_mb']
    assert set(rss) == {'query_encoder', 'gallery_server', 'matcher'}
    assert all(v and v > 0 for v in rss.values())
    peak = res['memory']['peak_rss_mb']
    assert all(peak[k] >= rss[k] * 0.99 for k in rss)
    names = ' '.join(f['floor'] for f in res['floors'])
    for word in ('10x', 'sustains', 'p99 on', 'R@1 loss', 'end-to-end', 'dropped', 'RSS'):
        assert word in names, word
    assert all(isinstance(f['pass'], bool) for f in res['floors'])
    md = (out / 'bench.md').read_text()
    assert md.count('\n| (') >= 7 and ('PASS' in md or 'FAIL' in md)
    assert 'with the hubness correction (1,440 reference descriptors, top 50 re-scored)' in md
    assert md.strip() in proc.stdout


def test_a_model_that_does_not_trace_keeps_its_other_latencies(monkeypatch):
    """The TorchScript row is left empty (with the reason) for a model that does not trace;
    torch and onnxruntime are still timed, and the ratios use what ran."""
    import types
    from vpr_ros.bench import models, report
    from vpr_ros.models import runtime

    def refuse(model, input_size, batch=1):
        raise ValueError('does not trace to TorchScript (test)')
    monkeypatch.setattr(runtime, 'frozen_trace', refuse)
    cfg = types.SimpleNamespace(query_model='mobilenetv3_small', gallery_model='dinov2_vits14_gem',
                                reference_models=[], dim=0, model_runs=4, input_size=56,
                                threads=1)
    res = models.bench_models(cfg, log=lambda *a: None)
    q, g = res['rows']
    for r in (q, g):
        assert r['torchscript_p50_ms'] is None and r['torchscript_p90_ms'] is None
        assert 'does not trace' in r['torchscript_error']
        assert r['torch_p50_ms'] > 0 and r['ort_p50_ms'] > 0
    ratios = res['gallery_over_query']
    assert ratios['torchscript'] is None
    assert ratios['best_vs_best'] == round(min(g['torch_p50_ms'], g['ort_p50_ms'])
                                           / min(q['torch_p50_ms'], q['ort_p50_ms']), 1)
    md = report.markdown({'machine': {'cpu': 'x', 'cores': 2, 'torch': '-', 'faiss': '-'},
                          'load_start': [0], 'load_end': [0], 'floors': [],
                          'models': res}, cfg)
    assert 'torchscript - /' in md and 'torchscript -, ' in md
