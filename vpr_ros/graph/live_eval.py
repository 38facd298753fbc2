"""``vpr-ros evaluate --live``: the three nodes as processes, the frames replayed over DDS.

Frames are published as lossless sensor_msgs/Image with their bag stamps and /clock (the nodes
run with use_sim_time), paced by the bag's own stamps or ``--rate``. Each frame's match and
pose prior are recorded by stamp; frames that got no match are counted as dropped.
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import List

import numpy as np

from vpr_ros.config import MatcherConfig
from vpr_ros.evaluation import EvalConfig, EvalRun, FrameResult
from vpr_ros.evaluation.offline import iter_queries, query_encoder_config

IMAGE_TOPIC = 'camera/image_raw'


def write_params(cfg: EvalConfig, matcher: MatcherConfig, map_encoder: str, path: Path) -> str:
    """The localize graph's YAML with this evaluation's query network and matcher settings."""
    from vpr_ros import params_file
    from vpr_ros.evaluation.offline import load_params
    params = load_params(cfg)
    q = query_encoder_config(cfg, map_encoder)
    qe = {}
    # reliable: a replay measures the nodes, not frames the middleware drops (the encoder's
    # one-slot mailbox still drops, and counts, frames it cannot keep up with)
    qe.update(model=q.model, checkpoint=q.checkpoint, backend=q.backend, threads=q.threads,
              image_topic=IMAGE_TOPIC, transport='raw', image_qos='reliable')
    if q.input_size:
        qe['input_size'] = [int(v) for v in q.input_size]
    # (empty lists left out: ROS parameter YAML cannot type them)
    m = {k: v for k, v in dataclasses.asdict(matcher).items() if k != 'map_path' and v != []}
    m['publish_unlocalized_prior'] = True  # record every frame's prior; 'localized' still says
    if q.checkpoint or q.model != map_encoder:
        # a query network other than the map's: the query_encoder, given the map, has checked
        # that it was trained for it, so the matcher takes its descriptors
        m['accepted_encoders'] = ['*']
    params_file.set_node_params(params, 'query_encoder', qe)
    params_file.set_node_params(params, 'matcher', m)
    path.parent.mkdir(parents=True, exist_ok=True)
    return params_file.dump(params, path)


def _check_alive(group) -> None:
    dead = group.poll_dead()
    if dead:
        raise RuntimeError(f'node {dead[0][0]} exited with code {dead[0][1]} (see its log '
                           f'above); the live evaluation cannot continue')


def _wait_connected(client, group, rgb, first_ns: int, timeout: float) -> None:
    """Send warm-up frames (stamped before the first frame) until one comes back matched."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.wait_for_graph(timeout=2.0)
            break
        except TimeoutError:
            _check_alive(group)
            if time.monotonic() > deadline:
                raise RuntimeError(f'the nodes did not come up within {timeout:.0f} s') from None
    base = first_ns - 10_000_000_000  # warm-up stamps rise towards the first frame's
    for k in range(1, 9000):
        ns = base + 1_000_000 * k
        client.publish(-k, ns, rgb)
        t_end = time.monotonic() + 2.0
        while time.monotonic() < t_end:
            if client.records[ns].t_match is not None:
                t_settle = time.monotonic() + 3.0  # earlier warm-ups may still be in flight
                while time.monotonic() < t_settle and any(
                        r.t_match is None for r in list(client.records.values())):
                    time.sleep(0.05)
                client.records.clear()
                return
            time.sleep(0.05)
        _check_alive(group)
        if time.monotonic() > deadline:
            break
    raise RuntimeError(f'no match came back for warm-up frames within {timeout:.0f} s')


def _reset_matcher(client, timeout: float = 10.0) -> str:
    """Clear the matcher's temporal state (the warm-up frames went through it), so the replay
    starts from the same empty state as the offline run; a warning if it cannot be done."""
    from std_srvs.srv import Trigger
    srv = client.node.create_client(Trigger, 'vpr/trigger_relocalization')
    if not srv.wait_for_service(timeout_sec=timeout):
        return ('the matcher offers no vpr/trigger_relocalization service: its temporal state '
                'includes the warm-up frames')
    from vpr_ros.graph.service_call import call_service
    try:
        call_service(srv, Trigger.Request(), timeout)
    except TimeoutError:
        return 'the matcher did not answer vpr/trigger_relocalization'
    return ''


def _result(q, rec) -> FrameResult:
    from vpr_ros.nodes.map_messages import yaw_of_pose
    fr = FrameResult(q.index, q.stamp, q.name, q.condition, q.gt, q.gt_yaw)
    if rec.t_descriptor is not None:
        fr.latency_ms['publish_to_descriptor'] = (rec.t_descriptor - rec.t_published) * 1e3
        fr.latency_ms['inference'] = rec.inference_ms
    if rec.match is None or not rec.match.candidates:
        return fr
    c = rec.match.candidates
    fr.ids = np.array([x.place_id for x in c], np.int64)
    fr.scores = np.array([x.score for x in c], np.float64)
    fr.cand_xy = np.array([[x.pose.position.x, x.pose.position.y] for x in c], np.float64)
    fr.cand_yaw = np.array([yaw_of_pose(x.pose) for x in c], np.float64)
    fr.confidence, fr.localized = float(rec.match.confidence), bool(rec.match.localized)
    fr.answered = True
    if rec.prior is not None:
        p = rec.prior.pose.pose
        fr.prior = (p.position.x, p.position.y, yaw_of_pose(p))
    if rec.t_descriptor is not None:
        fr.latency_ms['descriptor_to_match'] = (rec.t_match - rec.t_descriptor) * 1e3
    fr.latency_ms['end_to_end'] = (rec.t_match - rec.t_published) * 1e3
    return fr


def run_live(cfg: EvalConfig, matcher: MatcherConfig, startup_timeout: float = 240.0,
             drain_s: float = 10.0) -> EvalRun:
    """Start query_encoder, gallery_server and matcher, replay the queries, record results."""
    from vpr_ros.graph.launcher import graph_commands, NodeGroup
    from vpr_ros.mapstore import MapStore
    from vpr_ros.graph.replay import ReplayClient
    with MapStore.open(cfg.map) as store:
        manifest, info = store.manifest, {'map_places': store.num_places,
                                          'map_encoder': store.encoder,
                                          'map_version': store.version}
    if cfg.vg:  # independent images: the matcher's single-frame path, as offline
        matcher = dataclasses.replace(matcher, use_filter=False)
    info['temporal_filter'] = bool(matcher.use_filter)
    queries = iter_queries(cfg, manifest, info)
    first = next(queries, None)
    if first is None:
        raise ValueError(f'{cfg.bag or cfg.vg}: no usable query frame')
    q = query_encoder_config(cfg, manifest['encoder'])
    info.update(model=q.model or q.checkpoint, backend=q.backend, input_size=q.input_size,
                rate_hz=cfg.rate or 'bag')
    params = write_params(cfg, matcher, manifest['encoder'], Path(cfg.out) / 'live_params.yaml')
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    metas, seen, warnings = [], set(), []
    with NodeGroup(graph_commands('localize', params, cfg.map, use_sim_time=True)) as group:
        client = ReplayClient(image_topic=IMAGE_TOPIC, compressed=False, publish_clock=True)
        try:
            first_ns = int(round(first.stamp * 1e9))
            _wait_connected(client, group, first.rgb, first_ns, startup_timeout)
            problem = _reset_matcher(client)
            if problem:
                warnings.append(problem)
            before = client.encoder_stats()
            t0 = time.monotonic()
            for i, qu in enumerate(_chain(first, queries)):
                ns = int(round(qu.stamp * 1e9))
                while ns in seen:  # records are keyed by stamp
                    ns += 1
                seen.add(ns)
                due = t0 + (i / cfg.rate if cfg.rate > 0 else (ns - first_ns) * 1e-9)
                time.sleep(max(0.0, due - time.monotonic()))
                client.publish(i, ns, qu.rgb)
                qu.rgb = None  # keep only the metadata of published frames
                metas.append(qu)
                if i % 20 == 0:
                    _check_alive(group)
            deadline = time.monotonic() + drain_s
            while time.monotonic() < deadline and any(
                    r.t_match is None for r in list(client.records.values())):
                time.sleep(0.05)
            records = sorted(client.records.values(), key=lambda r: r.index)
            info['query_encoder_stats'] = client.encoder_stats(since=before)
        finally:
            client.close()
        _check_alive(group)
    frames: List[FrameResult] = [_result(qu, rec) for qu, rec in zip(metas, records)]
    done = [r.t_match for r in records if r.t_match is not None]
    t_first = min(r.t_published for r in records)
    wall = (max(done) if done else max(r.t_published for r in records)) - t_first
    return EvalRun('live', frames, wall, info, warnings)


def _chain(first, rest):
    yield first
    yield from rest
