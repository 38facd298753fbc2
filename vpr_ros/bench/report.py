"""Machine description, floors (PASS/FAIL) and the one markdown table of ``vpr-ros bench``."""
from __future__ import annotations

import os
import platform
from typing import Dict, List


def machine() -> Dict:
    """CPU model, cores, library versions and the current load average."""
    import faiss
    import torch
    cpu = platform.processor() or 'unknown'
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    out = {'cpu': cpu, 'cores': os.cpu_count(), 'torch': torch.__version__,
           'faiss': faiss.__version__, 'python': platform.python_version()}
    try:
        import onnxruntime
        out['onnxruntime'] = onnxruntime.__version__
    except ImportError:
        pass
    return out


def loadavg() -> List[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _floor(name, value, limit, ok, unit='') -> Dict:
    return {'floor': name, 'value': value, 'limit': limit, 'unit': unit,
            'pass': bool(ok) if value is not None else False}


def floors(res: Dict, cfg) -> List[Dict]:
    """The product's real-time floors evaluated on this run's measurements."""
    out = []
    if res.get('models'):
        r = res['models']['gallery_over_query']['best_vs_best']
        out.append(_floor('query net >= 10x faster than gallery (best backend each)', r,
                          cfg.min_speedup, r >= cfg.min_speedup, 'x'))
    if res.get('node'):
        # At exactly min_rate_hz input the node cannot exceed the input rate: allow the same
        # share of dropped frames as the end-to-end floor (30 Hz -> 29.7 descriptors/s). Slots
        # the camera client itself missed (end_to_end client_late_skipped) were never offered.
        rate = res['node']['descriptors_per_s']
        offered = min(cfg.min_rate_hz, res['node']['input_hz'])
        need = round(offered * (1 - cfg.max_dropped_pct / 100), 2)
        out.append(_floor(f'query_encoder node sustains {cfg.min_rate_hz:g} descriptors/s',
                          rate, need, rate >= need, '/s'))
    big = [r for r in res.get('matcher', []) if r['n'] == max(cfg.map_sizes)]
    for r in big:
        tag = f'{r["n"]:,} x {r["dim"]}'
        out.append(_floor(f'matcher top-{cfg.top_k} p99 on {tag}', r['p99_ms'],
                          cfg.max_match_p99_ms, r['p99_ms'] <= cfg.max_match_p99_ms, 'ms'))
        loss = round(100 * r['r1_loss'], 2)
        out.append(_floor(f'R@1 loss vs exact on {tag}', loss, cfg.max_r1_loss_pts,
                          loss <= cfg.max_r1_loss_pts, 'points'))
    if res.get('end_to_end'):
        e = res['end_to_end']
        out.append(_floor(f'end-to-end p99 at {cfg.rate_hz:g} Hz', e['p99_ms'],
                          cfg.max_e2e_p99_ms,
                          e['p99_ms'] is not None and e['p99_ms'] <= cfg.max_e2e_p99_ms, 'ms'))
        out.append(_floor('frames dropped end to end', e['dropped_pct'], cfg.max_dropped_pct,
                          e['dropped_pct'] <= cfg.max_dropped_pct, '%'))
    if res.get('memory'):
        rss = res['memory']['peak_rss_mb'].get('matcher')
        out.append(_floor(f'matcher RSS (peak) with the {res["memory"]["map_places"]:,}-place '
                          f'map', rss, cfg.max_rss_mb, rss is not None and rss <= cfg.max_rss_mb,
                          'MB'))
        enc = res['memory']['peak_rss_mb'].get('query_encoder')
        backend = res.get('node', {}).get('backend', cfg.node_backend)
        out.append(_floor(f'query_encoder RSS (peak, {backend})', enc, cfg.max_encoder_rss_mb,
                          enc is not None and enc <= cfg.max_encoder_rss_mb, 'MB'))
    return out


def _row(section, what, value, floor='') -> str:
    return f'| {section} | {what} | {value} | {floor} |'


def _verdict(fl: List[Dict], key: str) -> str:
    hit = [f for f in fl if f['floor'].startswith(key)]
    if not hit:
        return ''
    f = hit[0]
    return f'{"PASS" if f["pass"] else "FAIL"} (limit {f["limit"]} {f["unit"]})'


def _build_text(r: Dict) -> str:
    text = f'map built in {r["build_s"]} s'
    if r.get('index_build_s') is not None:
        text += f', index rebuilt in {r["index_build_s"]} s'
    cached = {'all': 'cached: map and index reused', 'data': 'cached data, new index',
              'no': 'built in this run'}.get(r['build_cached'], '')
    return f'{text} ({cached})'


def markdown(res: Dict, cfg) -> str:
    """ONE markdown table of every section, with the floors' verdicts next to the figures."""
    m, fl = res['machine'], res['floors']
    lines = [f'Machine: {m["cpu"]}, {m["cores"]} cores; torch {m["torch"]}, faiss {m["faiss"]}, '
             f'onnxruntime {m.get("onnxruntime", "-")}; load average (1/5/15 min) at start '
             f'{res["load_start"]}, at end {res["load_end"]}.', '',
             '| section | measurement | value | floor |', '|---|---|---|---|']
    if res.get('models'):
        for r in res['models']['rows']:
            lines.append(_row('(a) models', f'{r["model"]} ({r["role"]}, {r["weights"]}, '
                              f'{r["params_m"]}M params, {r["dim"]}-d) batch 1 @ {r["input"]}, '
                              f'{r["threads"]} threads', f'torch {r["torch_p50_ms"]} ms / '
                              f'torchscript {_or_dash(r["torchscript_p50_ms"], " ms")} / '
                              f'onnxruntime {r["ort_p50_ms"]} ms (p50)'))
        rt = res['models']['gallery_over_query']
        lines.append(_row('(a) models', 'gallery / query latency ratio',
                          f'torch {rt["torch"]}x, torchscript {_or_dash(rt["torchscript"], "x")}, '
                          f'onnxruntime {rt["onnxruntime"]}x, best vs best '
                          f'{rt["best_vs_best"]}x', _verdict(fl, 'query net')))
    if res.get('node'):
        n = res['node']
        lines.append(_row('(b) query_encoder node', f'{n["input_hz"]} Hz {n["frame"]} input '
                          f'over DDS, {n["backend"]} {n["threads"]} thread(s) @ {n["input"]}',
                          f'{n["descriptors_per_s"]} descriptors/s; decode+inference p50 '
                          f'{n["inference_p50_ms"]} ms, p95 {n["inference_p95_ms"]} ms; '
                          f'dropped {n["dropped"]}/{n["received"]}',
                          _verdict(fl, 'query_encoder')))
    for r in res.get('matcher', []):
        lines.append(_row('(c) matcher', f'top-{cfg.top_k}, {r["n"]:,} places x {r["dim"]}-d '
                          f'(exact: {r["exact_method"]}; compressed: {r["index"]}, nprobe '
                          f'{r["nprobe"]})', f'exact p50 {r["exact_p50_ms"]} / p99 '
                          f'{r["exact_p99_ms"]} ms, R@1 {r["exact_r1"]:.3f}; compressed p50 '
                          f'{r["p50_ms"]} / p99 {r["p99_ms"]} ms, R@1 {r["r1"]:.3f} (loss '
                          f'{100 * r["r1_loss"]:.1f} pts){_hubness_text(r)}, process RSS '
                          f'{r["rss_after_queries_mb"]} MB; {_build_text(r)}',
                          ' '.join(filter(None, [_verdict(fl, f'matcher top-{cfg.top_k} p99 on '
                                                              f'{r["n"]:,} x {r["dim"]}'),
                                                 _verdict(fl, f'R@1 loss vs exact on '
                                                              f'{r["n"]:,} x {r["dim"]}')]))))
    if res.get('end_to_end'):
        e = res['end_to_end']
        lines.append(_row('(d) end to end', f'camera frame -> pose prior, 3 nodes, '
                          f'{res["node"]["input_hz"]} Hz, {e["frames"]} frames, '
                          f'{res["memory"]["map_places"]:,}-place map',
                          f'p50 {e["p50_ms"]} / p95 {e["p95_ms"]} / p99 {e["p99_ms"]} ms; '
                          f'dropped {e["dropped"]} ({e["dropped_pct"]}%); camera slots the '
                          f'client missed {e.get("client_late_skipped", 0)}; frame->descriptor '
                          f'p50 {e["frame_to_descriptor_p50_ms"]} ms, descriptor->match p50 '
                          f'{e["descriptor_to_match_p50_ms"]} ms',
                          ' '.join(filter(None, [_verdict(fl, 'end-to-end'),
                                                 _verdict(fl, 'frames dropped')]))))
    if res.get('memory'):
        for name, mb in res['memory']['rss_mb'].items():
            lines.append(_row('(e) memory', f'RSS of {name}'
                              + (f' ({res["memory"]["map_places"]:,}-place map loaded)'
                                 if name in ('matcher', 'gallery_server') else ''),
                              f'{mb} MB at the end, peak {res["memory"]["peak_rss_mb"][name]} '
                              f'MB', _verdict(fl, {'matcher': 'matcher RSS', 'query_encoder':
                                                   'query_encoder RSS'}.get(name, '-'))))
    passed = sum(f['pass'] for f in fl)
    lines += ['', f'Floors: {passed}/{len(fl)} PASS.']
    return '\n'.join(lines)


def _or_dash(value, unit: str) -> str:
    """``value`` with its unit, or '-' for a backend that did not run (a model that does not
    trace has no TorchScript latency)."""
    return '-' if value is None else f'{value}{unit}'


def _hubness_text(r: dict) -> str:
    """The compressed index searched with the matcher's hubness correction, if probed."""
    if 'hubness_first_p50_ms' not in r:
        return ''
    return (f'; with the hubness correction ({r["hubness_refs"]:,} reference descriptors, top '
            f'{r["hubness_candidates"]} re-scored) p50 {r["hubness_first_p50_ms"]} / p99 '
            f'{r["hubness_first_p99_ms"]} ms on first sight of the candidates, '
            f'{r["hubness_cached_p50_ms"]} / {r["hubness_cached_p99_ms"]} ms cached, RSS '
            f'{r.get("rss_after_hubness_mb", "-")} MB after it')
