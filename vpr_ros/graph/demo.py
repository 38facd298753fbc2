"""The demo (``vpr-ros demo``): the README's main job, end to end through the three running nodes.

1. renders a small synthetic town (day database, a dusk drive recorded as an MCAP bag);
2. builds its map with the offline gallery model (efficientnet_lite2_vpr24);
3. starts query_encoder (the query network shipped for that gallery: the asymmetric pair),
   gallery_server and matcher as separate processes (vpr-ros run);
4. plays the bag's camera frames to them over DDS and prints every match and Recall@1;
5. replays the drive once more with the map's own model (symmetric) and prints both Recall@1.
Generated data is cached under --data, so a second run starts at step 3.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from vpr_ros.shipped_queries import (accepted_query_networks, resolve_query_model,
                                     shipped_query_for)


@dataclasses.dataclass
class DemoConfig:
    """Settings of ``vpr-ros demo`` (each field is a --flag of the same name)."""

    data: str = 'data/demo'                 # where the world and the map are generated
    seed: int = 7                           # town seed
    places: int = 48
    # the asymmetric pair: the map by the gallery model, the frames by the query network
    # shipped for it (query_model shipped); query_model map: the gallery model (symmetric)
    gallery_model: str = 'efficientnet_lite2_vpr24'
    query_model: str = 'shipped'            # shipped | auto | map | a registered model name
    query_checkpoint: str = ''              # a query network trained for the gallery model
    compare_symmetric: bool = True          # asymmetric run: replay again with the map's model
    rate_hz: float = 4.0                    # camera rate of the replay
    threshold_m: float = 25.0


def prepare(cfg: DemoConfig) -> dict:
    """Generate (or reuse) the sample world and its map; returns their paths."""
    from vpr_ros.mapstore.build import build_map, BuildConfig
    root = Path(cfg.data)
    world_dir, map_dir = root / f'world_s{cfg.seed}_p{cfg.places}', root / 'map'
    done = world_dir / 'demo_ready.json'
    if not done.exists():
        print(f'[demo] rendering the sample town (seed {cfg.seed}, {cfg.places} places)...',
              flush=True)
        # Rendered in a child process: an EGL/llvmpipe context and the torch/faiss threads in
        # one process have crashed the map build that follows.
        code = ('import json, sys\n'
                'from vpr_ros.world.generate import sample_world\n'
                's = sample_world(sys.argv[1], seed=int(sys.argv[2]), places=int(sys.argv[3]),'
                ' progress=True)\n'
                'print(json.dumps({"database": str(s.paths["vg_database"][0]),'
                ' "bag": str(s.paths["bags"][0]), "render_ms": s.render_ms}))\n')
        res = subprocess.run([sys.executable, '-c', code, str(world_dir), str(cfg.seed),
                              str(cfg.places)], stdout=subprocess.PIPE, text=True, check=True)
        done.write_text(res.stdout.strip().splitlines()[-1])
    paths = json.loads(done.read_text())
    key = {'model': cfg.gallery_model, 'world': str(world_dir)}
    key_file = map_dir / 'demo_key.json'
    if not key_file.exists() or json.loads(key_file.read_text()) != key:
        print(f'[demo] building the map with {cfg.gallery_model}...', flush=True)
        vg_root = Path(paths['database']).parent
        build_map(BuildConfig(model=cfg.gallery_model, source='vg', input=str(vg_root),
                              out=str(map_dir), index='Flat'))
        key_file.write_text(json.dumps(key))
    return {'map': str(map_dir), 'bag': paths['bag']}


def query_model(cfg: DemoConfig) -> str:
    """The registered query network the demo's query_encoder runs ('' with a checkpoint);
    'shipped': the query network shipped for the gallery model (recommended or not: the demo
    shows the pair), else the gallery model."""
    if cfg.query_checkpoint:
        return ''
    if cfg.query_model == 'shipped':
        shipped = shipped_query_for(cfg.gallery_model)
        return shipped.name if shipped else cfg.gallery_model
    return resolve_query_model(cfg.query_model, cfg.gallery_model)


def _write_params(cfg: DemoConfig, map_dir: str, path: Path) -> str:
    from vpr_ros import params_file
    from vpr_ros.share import share_dir
    params = params_file.load(share_dir() / 'config' / 'localize.yaml')
    params_file.set_node_params(params, 'query_encoder', dict(
        model=query_model(cfg), checkpoint=cfg.query_checkpoint,
        map_path=map_dir, transport='compressed'))  # the replay publishes the bag's JPEGs
    if cfg.query_checkpoint or query_model(cfg) not in (
            cfg.gallery_model, *accepted_query_networks(cfg.gallery_model)):
        # the query_encoder checks its network against the map (map_path) before it publishes
        params_file.set_node_params(params, 'matcher', {'accepted_encoders': ['*']})
    return params_file.dump(params, path)


def run_demo(cfg: DemoConfig) -> int:
    """Prepare the world and map, run the three nodes, replay the bag (an asymmetric pair:
    then again with the map's own model, and both Recall@1 side by side); exit code."""
    t0 = time.time()
    paths = prepare(cfg)
    from vpr_ros.geo import MapOrigin
    from vpr_ros.io.bags import BagReader
    from vpr_ros.mapstore import read_manifest
    origin = MapOrigin(**read_manifest(paths['map'])['origin'])
    with BagReader(paths['bag'], pose_topic='/gps/fix', origin=origin) as bag:
        frames = [(int(round(f.stamp * 1e9)), f.rgb, f.pose) for f in bag.frames()]
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    code, recall = _replay(cfg, paths, frames, t0)
    query = cfg.query_checkpoint or query_model(cfg)
    if code or not cfg.compare_symmetric or query == cfg.gallery_model:
        return code
    print('[demo] the same drive with the map\'s own model (symmetric), for comparison',
          flush=True)
    sym = dataclasses.replace(cfg, query_model='map', query_checkpoint='')
    code, sym_recall = _replay(sym, paths, frames, time.time())
    print(f'[demo] Recall@1: asymmetric ({query}) {recall:.3f}, symmetric '
          f'({cfg.gallery_model}) {sym_recall:.3f}', flush=True)
    return code


def _replay(cfg: DemoConfig, paths: dict, frames, t0: float):
    """One run of the three nodes over the bag's frames: (exit code, Recall@1)."""
    from vpr_ros.graph.launcher import graph_commands, NodeGroup
    from vpr_ros.graph.replay import ReplayClient
    params = _write_params(cfg, paths['map'], Path(cfg.data) / 'localize_demo.yaml')
    query = cfg.query_checkpoint or query_model(cfg)
    mode = 'symmetric' if query == cfg.gallery_model else 'asymmetric'
    print(f'[demo] models: map by {cfg.gallery_model}, frames by {query} ({mode}; '
          f'--query-model map: symmetric)', flush=True)
    print(f'[demo] starting query_encoder, gallery_server, matcher; {len(frames)} frames '
          f'from {paths["bag"]}', flush=True)
    with NodeGroup(graph_commands('localize', params, paths['map'])) as group:
        client = ReplayClient()
        try:
            client.wait_for_graph(timeout=180, dead=lambda: [n for n, _ in group.poll_dead()])
            time.sleep(1.0)  # let the matcher's subscription match too
            records = client.play([(s, rgb) for s, rgb, _ in frames], rate_hz=cfg.rate_hz)
        finally:
            client.close()
        dead = group.poll_dead()
    if dead:
        print(f'[demo] node {dead[0][0]} died (exit {dead[0][1]})')
        return 1, 0.0
    return report(records, [p for _, _, p in frames], cfg, time.time() - t0)


def report(records, poses, cfg: DemoConfig, elapsed: float) -> int:
    """Print every frame's match and Recall@1; (0 if any frame was answered, Recall@1)."""
    correct = answered = 0
    for rec, pose in zip(records, poses):
        if rec.match is None or not rec.match.candidates or pose is None:
            print(f'frame {rec.index:03d}: no match (dropped)')
            continue
        answered += 1
        best = rec.match.candidates[0]
        err = math.hypot(best.pose.position.x - pose.x, best.pose.position.y - pose.y)
        ok = err <= cfg.threshold_m
        correct += ok
        latency = (rec.t_match - rec.t_published) * 1e3
        print(f'frame {rec.index:03d}: place {best.place_id:4d} score {best.score:.3f} '
              f'confidence {rec.match.confidence:.2f} error {err:6.1f} m '
              f'{"correct" if ok else "WRONG  "} latency {latency:5.1f} ms')
    n = len(records)
    recall = correct / n if n else 0.0
    print(f'Recall@1: {recall:.3f} ({correct}/{n} frames within {cfg.threshold_m:.0f} m; '
          f'{n - answered} without a match) in {elapsed:.0f} s')
    return (0 if answered else 1), recall
