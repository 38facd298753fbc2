"""``vpr-ros bench-robot``: the robot-side install without torch, measured.

Makes a fresh venv from requirements-robot.txt (or reuses ``--venv``), checks torch is not in
it, prints its size, then runs the localize graph from it: query_encoder on the shipped query
network exported to .onnx (onnxruntime, NumPy preprocessing), gallery_server and matcher on a
small map made by the gallery model, camera frames at ``--rate-hz``. Prints install size, each
node's RSS (current and peak) and end-to-end latency; writes ``robot.json`` to ``--out``.
A venv made in a temporary folder is deleted afterwards unless ``--keep-venv``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import types
from pathlib import Path


def add_arguments(parser) -> None:
    """Options of ``vpr-ros bench-robot``."""
    parser.add_argument('--out', default='runs/bench_robot')
    parser.add_argument('--venv', default='', help='an existing robot venv to use (default: '
                        'make one in a temporary folder and delete it afterwards)')
    parser.add_argument('--keep-venv', action='store_true')
    parser.add_argument('--requirements', default='',
                        help='default: requirements-robot.txt next to the vpr_ros package')
    parser.add_argument('--query-model', default='',
                        help="'' = the shipped pair (vpr_ros.bench.pair), else symmetric")
    parser.add_argument('--places', type=int, default=100, help='places in the map')
    parser.add_argument('--threads', type=int, default=1, help='query_encoder threads')
    parser.add_argument('--rate-hz', type=float, default=30.0)
    parser.add_argument('--warmup-s', type=float, default=3.0)
    parser.add_argument('--duration-s', type=float, default=20.0)
    parser.add_argument('--frame-size', type=int, nargs=2, default=[480, 640],
                        metavar=('H', 'W'))
    parser.add_argument('--nodes', choices=['localize', 'query_encoder'], default='localize',
                        help='the three nodes, or the query_encoder alone (RSS and rate only)')
    parser.add_argument('--max-rss-mb', type=float, default=250.0,
                        help='floor for the query_encoder RSS')
    parser.add_argument('--max-install-mb', type=float, default=1024.0)


def prepare(args, out: Path, log=print) -> dict:
    """The .onnx query network, the map and the robot venv (made or reused)."""
    from vpr_ros.bench import robot
    from vpr_ros.bench.pair import build_query, Pair, shipped_pair
    from vpr_ros.graph.bench_graph import frames
    from vpr_ros.models.onnx_export import export_onnx
    pair = shipped_pair() if not args.query_model else \
        Pair(args.query_model, args.query_model, 'symmetric', 'query model given')
    log(f'[bench-robot] pair: {pair.label}; {pair.note}')
    net, meta = build_query(pair)
    onnx = out / 'query.onnx'
    export_onnx(net, meta, out=str(onnx), batch=1)
    images = frames(args.places, *args.frame_size, seed=1)
    shutil.rmtree(out / 'map', ignore_errors=True)
    map_info = robot.build_map(out / 'map', pair.gallery, images)
    info = {'pair': pair.label, 'pair_note': pair.note, 'onnx': str(onnx), 'map': map_info}
    tmp_root = '' if args.venv else tempfile.mkdtemp(prefix='vpr-robot-')
    venv = Path(args.venv or Path(tmp_root) / 'venv')
    info.update(venv=str(venv), tmp_root=tmp_root)  # only a venv made in tmp_root is deleted
    if not (venv / 'bin' / 'python').exists():
        req = args.requirements or str(robot.SOURCE_ROOT / 'requirements-robot.txt')
        info.update(robot.create_venv(venv, [req], log))
    info['sizes_mb'] = robot.install_sizes(venv)
    env = robot.robot_env(venv)
    py = str(venv / 'bin' / 'python')
    info['torch_in_venv'] = {m: robot.importable(py, m, env)
                             for m in ('torch', 'timm', 'torchvision', 'onnxruntime')}
    return info


def run_nodes(args, info: dict, out: Path, log=print) -> dict:
    """The localize graph from the robot venv, frames at args.rate_hz; RSS and latency."""
    from vpr_ros import params_file
    from vpr_ros.bench import robot
    from vpr_ros.graph.bench_graph import (frames, log_tails, private_domain, stop_graph,
                                           summarize)
    from vpr_ros.graph.bench_replay import bench_client
    from vpr_ros.graph.launcher import graph_commands
    from vpr_ros.share import share_dir
    params = params_file.load(share_dir() / 'config' / 'localize.yaml')
    mp = str(out / 'map')
    params_file.set_node_params(params, 'query_encoder', dict(
        model='', checkpoint=info['onnx'], backend='onnxruntime', threads=args.threads,
        map_path=mp, transport='compressed'))
    params_file.set_node_params(params, 'gallery_server', dict(map_path=mp))
    params_file.set_node_params(params, 'matcher', dict(
        map_path=mp, publish_unlocalized_prior=True, accepted_encoders=['*']))
    path = params_file.dump(params, out / 'robot_localize.yaml')
    env = robot.robot_env(Path(info['venv']), private_domain())
    os.environ.update({k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE')})
    py = str(Path(info['venv']) / 'bin' / 'python')
    procs, logs = {}, []
    for name, cmd in graph_commands('localize', path):
        if args.nodes != 'localize' and name != args.nodes:
            continue
        logs.append(open(out / f'{name}.log', 'w'))
        procs[name] = subprocess.Popen([py] + cmd[1:], stdout=logs[-1],
                                       stderr=subprocess.STDOUT, env=env,
                                       start_new_session=True)
    client = None
    try:
        client = bench_client(frames(30, *args.frame_size, seed=1))
        dead = lambda: [n for n, p in procs.items() if p.poll() is not None]  # noqa: E731
        if args.nodes == 'localize':
            client.wait_for_graph(timeout=300, dead=dead)
        else:  # the encoder alone: it subscribes and serves ~/stats
            deadline = time.monotonic() + 300
            while not client.node.count_subscribers(client.pub.topic_name) and not dead():
                if time.monotonic() > deadline:
                    raise TimeoutError('query_encoder did not subscribe within 300 s')
                time.sleep(0.1)
            if dead():
                raise RuntimeError(f'node(s) {dead()} exited')
        time.sleep(1.0)
        client.play_for(args.warmup_s, args.rate_hz, drain_s=1.0)
        before = client.encoder_stats()
        client.reset()
        records, play_s = client.play_for(args.duration_s, args.rate_hz, drain_s=3.0)
        stats = client.encoder_stats(since=before)
        rss = {n: _rss(p.pid) for n, p in procs.items()}
    except (RuntimeError, TimeoutError) as e:
        raise RuntimeError(f'{e}\n{log_tails(out, procs)}') from e
    finally:
        stop_graph(client, procs, logs)
    cfg = types.SimpleNamespace(node_backend='onnxruntime', node_threads=args.threads,
                                frame_size=tuple(args.frame_size))
    raw = {'records': records, 'play_s': play_s, 'stats': stats, 'network': info['onnx'],
           'rss': rss, 'startup_s': None}
    part = summarize(raw, cfg)
    return {'node': part['node'], 'end_to_end': part['end_to_end'], 'rss_mb': rss}


def _rss(pid: int) -> dict:
    """{'rss': current MB, 'peak': VmHWM MB} of a process (read from /proc)."""
    fields = {}
    for line in open(f'/proc/{pid}/status'):
        key, _, value = line.partition(':')
        if key in ('VmRSS', 'VmHWM'):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return {'rss': fields.get('VmRSS'), 'peak': fields.get('VmHWM')}


def report(res: dict, args) -> str:
    """The markdown table of the run."""
    s, q, rss = res['sizes_mb'], res['rss_mb']['query_encoder'], res['rss_mb']
    e2e = res['end_to_end']
    rows = [('install: venv (requirements-robot.txt)', f'{s["venv_mb"]:.0f} MB'),
            ('install: + vpr_ros package and interfaces', f'{s["total_mb"]:.0f} MB '
             f'(floor {args.max_install_mb:.0f}: '
             f'{"PASS" if s["total_mb"] <= args.max_install_mb else "FAIL"})'),
            ('torch / timm / torchvision importable in the venv',
             ' / '.join(str(res['torch_in_venv'][m]) for m in ('torch', 'timm', 'torchvision'))),
            ('query_encoder RSS (current / peak)', f'{q["rss"]} / {q["peak"]} MB (floor '
             f'{args.max_rss_mb:.0f}: {"PASS" if q["peak"] <= args.max_rss_mb else "FAIL"})'),
            ('query_encoder inference p50 / p95 (decode + resize + onnxruntime)',
             f'{res["node"]["inference_p50_ms"]} / {res["node"]["inference_p95_ms"]} ms'),
            (f'query_encoder at {args.rate_hz:g} Hz: descriptors/s, dropped',
             f'{res["node"]["descriptors_per_s"]}, {res["node"]["dropped"]}')]
    if 'matcher' in rss:
        rows += [('gallery_server, matcher RSS (current)',
                  f'{rss["gallery_server"]["rss"]}, {rss["matcher"]["rss"]} MB'),
                 (f'end-to-end at {args.rate_hz:g} Hz: p50 / p99, dropped',
                  f'{e2e["p50_ms"]} / {e2e["p99_ms"]} ms, {e2e["dropped_pct"]}%')]
    head = (f'pair: {res["pair"]} ({res["pair_note"]}); map: {res["map"]["places"]} places; '
            f'load average {res["load"]}')
    return '\n'.join([head, '', '| measured | value |', '|---|---|'] +
                     [f'| {a} | {b} |' for a, b in rows])


def run(args) -> int:
    """Measure and print; a temporary venv is removed unless --keep-venv."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = prepare(args, out)
    info['load'] = [round(v, 1) for v in os.getloadavg()]
    try:
        res = dict(info, **run_nodes(args, info, out))
    finally:
        if info['tmp_root'] and not args.keep_venv:
            shutil.rmtree(info['tmp_root'], ignore_errors=True)
    res['markdown'] = report(res, args)
    (out / 'robot.json').write_text(json.dumps(res, indent=2))
    print('\n' + res['markdown'])
    return 0
