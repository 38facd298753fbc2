"""Sections (b), (d), (e) of ``vpr-ros bench``: the three nodes as real processes over DDS.

A client publishes JPEG camera frames at ``rate_hz`` for ``duration_s`` (after a warm-up) to
query_encoder, gallery_server and matcher started as in ``vpr-ros run localize`` on a private
DDS domain (loopback). It records, per frame, when its descriptor, match and pose prior came
back; query_encoder's ``~/stats`` gives received/encoded/dropped; psutil gives each node's RSS.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Dict

import numpy as np

from vpr_ros.graph.launcher import graph_commands

NODES = ('query_encoder', 'gallery_server', 'matcher')


def query_network_file(cfg, cache: Path) -> str:
    """The query network the node loads: an .onnx (onnxruntime) or checkpoint (torch) file."""
    from vpr_ros.bench.models import build_net
    # keyed by the packaged weights too: new shipped weights must not reuse a stale export
    stem = (f'query-{cfg.query_model}-{cfg.dim}-{cfg.node_input_size}-'
            f'{packaged_weights_tag(cfg.query_model)}')
    path = cache / (stem + ('.onnx' if cfg.node_backend == 'onnxruntime' else '.pt'))
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        net, meta, _ = build_net(cfg.query_model, cfg.node_input_size, cfg.dim)
        if cfg.node_backend == 'onnxruntime':
            from vpr_ros.models.onnx_export import export_onnx
            export_onnx(net, meta, out=str(path), batch=1)
        else:
            from vpr_ros.models.checkpoint import save_checkpoint
            save_checkpoint(str(path), net)
    return str(path)


def packaged_weights_tag(name: str) -> str:
    """12 hex digits of the SHA-256 of ``name``'s packaged weights file ('init': none)."""
    from vpr_ros.mapstore.manifest import sha256_file
    from vpr_ros.models.packaged import WEIGHTS_DIR
    path = WEIGHTS_DIR / f'{name}.safetensors'
    return sha256_file(path)[:12] if path.is_file() else 'init'


def write_params(cfg, map_path: str, network: str, path: Path) -> str:
    from vpr_ros import params_file
    from vpr_ros.share import share_dir
    params = params_file.load(share_dir() / 'config' / 'localize.yaml')
    size = {'input_size': [cfg.node_input_size] * 2} if cfg.node_input_size else {}
    params_file.set_node_params(params, 'query_encoder', dict(
        model='', checkpoint=network, backend=cfg.node_backend, threads=cfg.node_threads,
        map_path='', transport='compressed', **size))  # no size: the network's own
    params_file.set_node_params(params, 'gallery_server', dict(map_path=map_path))
    params_file.set_node_params(params, 'matcher', dict(
        map_path=map_path, top_k=cfg.top_k, publish_unlocalized_prior=True,
        map_reload_period_s=5.0, accepted_encoders=['*']))  # a timing graph on a synthetic map
    return params_file.dump(params, path)


def private_domain() -> Dict[str, str]:
    """Environment of a private DDS domain on loopback (other users' nodes stay apart)."""
    env = dict(os.environ)
    env['ROS_DOMAIN_ID'] = os.environ.get('VPR_BENCH_DOMAIN_ID') or str(random.randint(30, 200))
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env['PYTHONUNBUFFERED'] = '1'
    return env


def frames(n: int, h: int, w: int, seed: int = 0):
    """``n`` distinct camera frames, uint8 RGB: street views of a rendered synthetic town at
    dusk. (Abstract test patterns, gradients and blobs, are what the query_encoder's no-place
    gate is for: the shipped network put one of them at 0.80, its threshold.)"""
    from vpr_ros.world.conditions import DATABASE_VIEW, get_condition
    from vpr_ros.world.generate import town_for
    from vpr_ros.world.render import Renderer
    from vpr_ros.world.routes import plan_route
    town = town_for(n, 10.0, seed)
    poses = plan_route(town, n, 10.0, seed=seed).poses(DATABASE_VIEW)[:n]
    with Renderer(town, (w, h), supersample=1) as r:
        return [r.render(p, get_condition('dusk'), noise_seed=i) for i, p in enumerate(poses)]


def _rss(procs) -> Dict[str, Dict]:
    """{node: {'rss': current MB (psutil), 'peak': VmHWM MB}} of each node process."""
    import psutil
    out = {}
    for name, p in procs.items():
        try:
            rss = psutil.Process(p.pid).memory_info().rss / 2**20
            hwm = next(int(line.split()[1]) for line in open(f'/proc/{p.pid}/status')
                       if line.startswith('VmHWM')) / 1024
            out[name] = {'rss': round(rss, 1), 'peak': round(hwm, 1)}
        except (psutil.Error, OSError, StopIteration):
            out[name] = {'rss': None, 'peak': None}
    return out


def run_graph(cfg, map_path: str, workdir: Path, log=print) -> Dict:
    """Start the three nodes on ``map_path``, play frames, return the raw measurements."""
    from vpr_ros.graph.bench_replay import bench_client  # rclpy only here
    network = query_network_file(cfg, Path(cfg.cache))
    params = write_params(cfg, map_path, network, workdir / 'bench_localize.yaml')
    env = private_domain()
    os.environ.update({k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE')})
    procs, logs = {}, []
    for name, cmd in graph_commands('localize', params):
        f = open(workdir / f'{name}.log', 'w')
        logs.append(f)
        procs[name] = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                                       start_new_session=True)
    t_start = time.monotonic()

    def exited():
        return [n for n, p in procs.items() if p.poll() is not None]

    client, failure = None, None
    try:
        client = bench_client(frames(cfg.distinct_frames, *cfg.frame_size), cfg.jpeg_quality)
        client.wait_for_graph(timeout=cfg.startup_timeout_s, dead=exited)
        client.encoder_stats()  # query_encoder is up and serving
        startup_s = time.monotonic() - t_start
        time.sleep(1.0)  # late subscriptions (matcher <- descriptors) finish matching
        client.play_for(cfg.warmup_s, cfg.rate_hz, drain_s=1.0)
        before = client.encoder_stats()
        client.reset()
        records, play_s = client.play_for(cfg.duration_s, cfg.rate_hz, drain_s=cfg.drain_s)
        stats = client.encoder_stats(since=before)
        rss = _rss(procs)
        dead = exited()
    except (RuntimeError, TimeoutError) as e:
        failure = e
    finally:
        stop_graph(client, procs, logs)
    if failure is not None:
        raise RuntimeError(f'{failure}\n{log_tails(workdir, procs)}') from failure
    if dead:
        raise RuntimeError(f'node(s) {dead} died\n{log_tails(workdir, dead)}')
    write_frames(records, workdir / 'frames.csv')
    log(f'[bench] graph: {len(records)} frames in {play_s:.1f} s; encoder stats {stats}')
    return {'records': records, 'play_s': play_s, 'stats': stats, 'rss': rss,
            'client_late_skipped': client.late_skipped,
            'startup_s': round(startup_s, 1), 'network': network}


def stop_graph(client, procs: Dict, logs) -> None:
    """Close the client, Ctrl-C every node's process group (killed after 15 s), close logs."""
    if client is not None:
        client.close()
    for p in procs.values():
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGINT)
    for p in procs.values():
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
    for f in logs:
        f.close()


def log_tails(workdir: Path, names, lines: int = 15) -> str:
    """The last ``lines`` lines of each named node's log in ``workdir``, for error messages."""
    out = []
    for name in names:
        path = workdir / f'{name}.log'
        text = path.read_text(errors='replace').splitlines()[-lines:] if path.is_file() else []
        out.append(f'--- {path} (last {len(text)} lines)\n' + '\n'.join(text))
    return '\n'.join(out)


def write_frames(records, path: Path) -> None:
    """Per-frame times (ms after publishing) for finding where the latency goes."""
    def ms(t, t0):
        return '' if t is None else f'{(t - t0) * 1e3:.2f}'
    lines = ['index,t_published,descriptor_ms,match_ms,prior_ms,inference_ms']
    for r in records:
        lines.append(f'{r.index},{r.t_published:.4f},{ms(r.t_descriptor, r.t_published)},'
                     f'{ms(r.t_match, r.t_published)},{ms(r.t_prior, r.t_published)},'
                     f'{"" if r.inference_ms is None else round(r.inference_ms, 2)}')
    path.write_text('\n'.join(lines) + '\n')


def _pct(values, p):
    return round(float(np.percentile(values, p)), 2) if len(values) else None


def summarize(raw: Dict, cfg) -> Dict:
    """(b) node rate/inference/drops, (d) end-to-end latency and drops, (e) RSS per node."""
    from vpr_ros.bench.models import network_input_size
    recs = raw['records']
    n = len(recs)
    desc = [r for r in recs if r.t_descriptor is not None]
    prior = [r for r in recs if r.t_prior is not None]
    e2e = [(r.t_prior - r.t_published) * 1e3 for r in prior]
    to_desc = [(r.t_descriptor - r.t_published) * 1e3 for r in desc]
    d_to_m = [(r.t_match - r.t_descriptor) * 1e3 for r in recs
              if r.t_match is not None and r.t_descriptor is not None]
    inf = [r.inference_ms for r in desc]
    node = {'input_hz': round(n / raw['play_s'], 2), 'frames': n,
            'descriptors_per_s': round(raw['stats']['encoded'] / raw['play_s'], 2),
            'inference_p50_ms': _pct(inf, 50), 'inference_p95_ms': _pct(inf, 95),
            'dropped': raw['stats']['dropped'], 'errors': raw['stats']['errors'],
            'received': raw['stats']['received'], 'encoded': raw['stats']['encoded'],
            'backend': cfg.node_backend, 'threads': cfg.node_threads,
            'input': 'x'.join(map(str, network_input_size(raw['network']))),
            'frame': f'{cfg.frame_size[1]}x{cfg.frame_size[0]} jpeg'}
    e2e_row = {'frames': n, 'with_prior': len(prior),
               'dropped': n - len(prior), 'dropped_pct': round(100.0 * (n - len(prior)) / n, 2)
               if n else 100.0,
               'p50_ms': _pct(e2e, 50), 'p95_ms': _pct(e2e, 95), 'p99_ms': _pct(e2e, 99),
               'max_ms': round(max(e2e), 2) if e2e else None,
               'frame_to_descriptor_p50_ms': _pct(to_desc, 50),
               'frame_to_descriptor_p99_ms': _pct(to_desc, 99),
               'descriptor_to_match_p50_ms': _pct(d_to_m, 50),
               'descriptor_to_match_p99_ms': _pct(d_to_m, 99),
               'client_late_skipped': raw.get('client_late_skipped', 0)}
    return {'node': node, 'end_to_end': e2e_row,
            'memory': {'rss_mb': {k: v['rss'] for k, v in raw['rss'].items()},
                       'peak_rss_mb': {k: v['peak'] for k, v in raw['rss'].items()},
                       'startup_s': raw['startup_s']}}
