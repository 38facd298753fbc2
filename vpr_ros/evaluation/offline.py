"""Query frames with ground truth (bag or VG folder) and the offline pipeline over them.

The pipeline is the nodes' own: decode with vpr_ros.imaging (inside BagReader or
read_image_file), encode with ``load_query_encoder``, search with ``MapStore.search`` and
summarize with ``summarize_candidates`` under the matcher's settings.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import numpy as np

from vpr_ros.config import MatcherConfig, QueryEncoderConfig
from vpr_ros.evaluation import EvalConfig, EvalRun, FrameResult


@dataclasses.dataclass
class Query:
    """One query frame: RGB image, ground truth in the map frame, and its decode time."""

    index: int
    stamp: float
    rgb: np.ndarray
    gt: Optional[Tuple[float, float]]
    gt_yaw: Optional[float]
    name: str = ''
    condition: str = ''
    decode_ms: float = 0.0
    K: Optional[np.ndarray] = None  # (3, 3) camera intrinsics (None: the map camera's)


ODOM_TOLERANCE_S = 0.5  # odometry this close to an image stamp is used (the matcher's buffer)
# the loggers whose warnings an evaluation report lists
WARNING_LOGGERS = ('vpr_ros.evaluation', 'vpr_ros.io.bags', 'vpr_ros.io.bag_backends')


class _Collect(logging.Handler):
    def __init__(self, out: List[str]):
        super().__init__(logging.WARNING)
        self.out = out

    def emit(self, record):
        self.out.append(record.getMessage())


@contextlib.contextmanager
def capture_warnings(out: List[str]):
    """Collect WARNING+ log messages of vpr_ros (bag readers...) into ``out``.

    ROS 2's launch package, once imported (its pytest plugins import it in every test run of a
    ROS install), creates every later logger with ``propagate = False``; the handler is then
    attached to each vpr_ros logger itself, not only to the ``vpr_ros`` parent."""
    handler = _Collect(out)
    for name in WARNING_LOGGERS:  # created now if their modules are imported later
        logging.getLogger(name)
    loggers = [logging.getLogger('vpr_ros')] + [
        lg for name, lg in logging.Logger.manager.loggerDict.items()
        if name.startswith('vpr_ros.') and isinstance(lg, logging.Logger) and not lg.propagate]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        yield out
    finally:
        for lg in loggers:
            lg.removeHandler(handler)


def bag_queries(cfg: EvalConfig, manifest: dict, info: dict, geo=None) -> Iterator[Query]:
    """Frames of ``cfg.bag`` with their ground-truth pose in the map frame (None where no pose
    is close); ``geo`` (evaluation.frames.MapGeo) places NavSatFix and aligns odometry."""
    from vpr_ros.evaluation.frames import choose_pose_topic, place_bag_track
    from vpr_ros.io.bag_backends import open_backend
    from vpr_ros.io.bags import BagReader
    try:
        backend, _ = open_backend(Path(cfg.bag))
        topics = dict(backend.topics)
        backend.close()
    except Exception:  # BagReader reports it properly
        topics = {}
    pose_topic, why = choose_pose_topic(topics, cfg.pose_topic, geo is not None)
    with BagReader(cfg.bag, cfg.image_topic or None, pose_topic or None, None,
                   cfg.pose_tolerance) as reader:
        info.update(image_topic=reader.image_topic, pose_topic=reader.pose_topic,
                    pose_topic_choice=why, bag_topics=dict(reader.topics),
                    ground_truth_frame=place_bag_track(reader, geo, cfg.pose_tolerance))
        from vpr_ros.io.camera_info import camera_matrix, read_bag_camera
        camera = read_bag_camera(reader)  # the metric pose's query intrinsics, when known
        info['query_intrinsics'] = camera['topic'] if camera else 'map camera (no CameraInfo)'
        it = reader.frames()
        for i in range(cfg.max_frames or 1 << 62):
            t0 = time.perf_counter()
            f = next(it, None)
            if f is None:
                break
            p = f.pose
            yield Query(i, f.stamp, f.rgb, None if p is None else (p.x, p.y),
                        None if p is None or not math.isfinite(p.yaw) else p.yaw,
                        name=f'{f.stamp:.3f}', decode_ms=(time.perf_counter() - t0) * 1e3,
                        K=camera_matrix(camera, f.rgb.shape[1::-1]))
        info.update(bag_warnings=reader.warnings, missing_poses=reader.missing_poses)


def vg_queries(cfg: EvalConfig, manifest: dict, info: dict, geo=None) -> Iterator[Query]:
    """Images of a VG queries folder; ground truth from their UTM names in the map's frame
    (through ``geo``, evaluation.frames.MapGeo, when the map is geo-referenced)."""
    from vpr_ros.imaging import ImageDecodeError, read_image_file
    from vpr_ros.io.vg import list_vg_folder, vg_xy
    from vpr_ros.mapstore.sources import heading_to_yaw
    records = list_vg_folder(cfg.vg)[:cfg.max_frames or None]
    if geo is not None:
        shift = (geo.origin.easting, geo.origin.northing) if geo.origin else (0.0, 0.0)
        xy = geo.vg_xy(records)
        info['ground_truth_frame'] = f'VG names -> map frame through the {geo.how}'
    else:  # no geo reference: VGSource anchored the map at the first database image
        db = Path(cfg.vg).parent / 'database'
        if not db.is_dir():
            raise ValueError(f'the map has no origin and {db} does not exist, so the VG names '
                             f'cannot be put into the map frame; rebuild the map from a VG '
                             f'folder with UTM zones or lat/lon in the names')
        first = list_vg_folder(db)[0]
        shift = (first.utm_e, first.utm_n)
        xy = vg_xy(records, None, shift)
        info['ground_truth_frame'] = f'VG UTM names shifted by the first image of {db}'
    info.update(vg_origin=list(shift), num_listed=len(records))
    log = logging.getLogger('vpr_ros.evaluation')
    for i, (r, (x, y)) in enumerate(zip(records, xy.tolist())):
        t0 = time.perf_counter()
        try:
            rgb = read_image_file(r.path)
        except (ImageDecodeError, OSError) as exc:
            log.warning('query image skipped: %s', exc)
            continue
        yaw = heading_to_yaw(r.heading) if math.isfinite(r.heading) else None
        gt = (float(x), float(y)) if math.isfinite(x) and math.isfinite(y) else None
        yield Query(i, 1000.0 + 0.1 * i, rgb, gt, yaw,
                    name=Path(r.path).name, condition=r.note,
                    decode_ms=(time.perf_counter() - t0) * 1e3)


def iter_queries(cfg: EvalConfig, manifest: dict, info: dict) -> Iterator[Query]:
    if bool(cfg.bag) == bool(cfg.vg):
        raise ValueError('give exactly one of --bag or --vg')
    geo = map_geo(cfg.map, manifest)
    info['map_geo'] = geo.how if geo is not None else 'none (no origin, no place lat/lon)'
    return (bag_queries(cfg, manifest, info, geo) if cfg.bag
            else vg_queries(cfg, manifest, info, geo))


def map_geo(path: str, manifest: dict):
    """The map's geo reference (evaluation.frames.MapGeo) or None."""
    from vpr_ros.evaluation.frames import MapGeo
    from vpr_ros.mapstore import MapStore
    if manifest.get('origin'):
        return MapGeo.of_map(manifest)
    with MapStore.open(path, verify_checksums=False) as store:
        return MapGeo.of_map(manifest, store)


def load_params(cfg: EvalConfig) -> dict:
    """The node parameter YAML (``cfg.params_file`` or the package's config/localize.yaml)."""
    from vpr_ros import params_file
    from vpr_ros.share import share_dir
    return params_file.load(cfg.params_file or share_dir() / 'config' / 'localize.yaml')


def matcher_config(params: dict) -> MatcherConfig:
    """The matcher node's settings from a parameter YAML dict (defaults for what is absent)."""
    from vpr_ros.config import from_dict
    from vpr_ros.params_file import node_params
    values = node_params(params, 'matcher')
    values.pop('use_sim_time', None)
    return from_dict(MatcherConfig, values)


def query_encoder_config(cfg: EvalConfig, map_encoder: str) -> QueryEncoderConfig:
    """The query_encoder node settings this evaluation corresponds to."""
    from vpr_ros.shipped_queries import resolve_query_model
    model = cfg.model if cfg.checkpoint else resolve_query_model(cfg.model, map_encoder)
    return QueryEncoderConfig(model='' if model == 'auto' else model,
                              checkpoint=cfg.checkpoint, backend=cfg.backend,
                              threads=cfg.threads, input_size=list(cfg.input_size),
                              map_path=cfg.map)


def run_offline(cfg: EvalConfig, matcher: Optional[MatcherConfig] = None) -> EvalRun:
    """Every query through decode -> encode -> search -> summarize, timed per stage.

    Search and summarize are the matcher node's own Localizer (hubness correction, single-frame
    or temporal filter, calibration, as the matcher settings say), fed the frames in bag order."""
    from vpr_ros.evaluation.calibrate import frame_similarity
    from vpr_ros.localization.localizer import Localizer
    from vpr_ros.query_pipeline import load_query_encoder, no_place_gate
    m = matcher or matcher_config(load_params(cfg))
    if cfg.vg:  # independent images, not a sequence: the single-frame path of the matcher
        m = dataclasses.replace(m, use_filter=False)
    localizer = Localizer(m).open(cfg.map)
    store = localizer.store
    info = {'temporal_filter': bool(m.use_filter), 'hubness_reference': m.hubness_reference,
            'map_places': store.num_places,
            'map_encoder': store.encoder, 'map_version': store.version,
            'verification': localizer.verifying, 'verification_problem': localizer.verify_problem}
    qcfg = query_encoder_config(cfg, store.encoder)
    encoder = load_query_encoder(qcfg)
    gate = no_place_gate(encoder, qcfg)  # frames showing no place are dropped, as live
    info.update(model=encoder.name, dim=encoder.dim, backend=encoder.backend,
                input_size=list(encoder.input_size), no_place=0,
                no_place_threshold=gate.threshold if gate else None)
    localizer.use_query_network(encoder.name)  # the similarity floor of its space, as live
    if localizer.levels_note:
        logging.getLogger('vpr_ros.evaluation').warning(localizer.levels_note)
    odom = odometry_of(cfg, m, info)
    from vpr_ros.evaluation.extrinsics import eval_extrinsics
    from vpr_ros.localization.frames import base_from_camera
    mount, info['camera_extrinsics'] = eval_extrinsics(cfg, m)  # camera -> base_link, as live
    frames: List[FrameResult] = []
    sources = info['pose_sources'] = {}  # frames per published pose: place/verified/metric
    t_start = time.perf_counter()
    try:
        for q in iter_queries(cfg, store.manifest, info):
            t0 = time.perf_counter()
            desc = encoder.encode(q.rgb)[0]
            t1 = time.perf_counter()
            if gate is not None and gate.shows_no_place(desc)[0]:
                info['no_place'] += 1  # the query_encoder publishes nothing for it
                frames.append(FrameResult(q.index, q.stamp, q.name, q.condition, q.gt,
                                          q.gt_yaw, latency_ms={
                                              'decode': q.decode_ms, 'encode': (t1 - t0) * 1e3,
                                              'total': q.decode_ms + (t1 - t0) * 1e3}))
                continue
            local = localizer.query_features(q.rgb)  # None unless verifying (the matcher's)
            t_local = time.perf_counter()
            match = localizer.search(desc, q.stamp, k=10)  # R@10 needs 10 candidates
            match = localizer.verify(match, local, q.K)  # top-k re-ranked, as the matcher does
            t2 = time.perf_counter()
            fr = FrameResult(q.index, q.stamp, q.name, q.condition, q.gt, q.gt_yaw, match.ids,
                             match.scores.astype(np.float64))
            est = localizer.estimate(match, odom(q.stamp)).estimate
            sources[match.pose_source] = sources.get(match.pose_source, 0) + 1
            if est is not None:
                fr.prior = base_from_camera((est.x, est.y, est.yaw), mount)
                fr.confidence, fr.localized = float(est.confidence), bool(est.localized)
                fr.raw_confidence = float(est.raw_confidence)
                _, fr.similarity, fr.recognised = frame_similarity(localizer, match)
                fr.answered = True
                fr.cand_xy, fr.cand_yaw = match.positions[:, :2], match.yaws
            t3 = time.perf_counter()
            fr.latency_ms = {'decode': q.decode_ms, 'encode': (t1 - t0) * 1e3,
                             'search': (t2 - t_local) * 1e3 - match.verify_ms,
                             'verify': (t_local - t1) * 1e3 + match.verify_ms,
                             'summarize': (t3 - t2) * 1e3,
                             'total': q.decode_ms + (t3 - t0) * 1e3}
            frames.append(fr)
    finally:
        localizer.close()
    return EvalRun('offline', frames, time.perf_counter() - t_start, info)


def odometry_of(cfg: EvalConfig, m: MatcherConfig, info: dict):
    """``stamp -> (x, y, yaw) or None``: the bag's ``odom_topic`` (the matcher's setting) at
    each image stamp, as the matcher node receives it; nothing when the setting is empty or
    the queries are a folder."""
    if not (m.odom_topic and cfg.bag and m.use_filter):
        return lambda _stamp: None
    from vpr_ros.io.bags import BagReader
    track = BagReader(cfg.bag, pose_topic=m.odom_topic).pose_track()
    info['odometry'] = {'topic': m.odom_topic, 'poses': len(track)}

    def at(stamp: float):
        p = track.at(stamp, ODOM_TOLERANCE_S)
        return None if p is None else (p.x, p.y, p.yaw)
    return at
