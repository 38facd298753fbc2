"""Ground truth in the map's frame, whatever the sources of the map and of the queries.

A map is geo-referenced by its UTM origin (VG folders, NavSatFix bags, lat/lon manifests) or,
without one, by the lat/lon its places store (a bag map built from /odom keeps the bag's
NavSatFix): a 2D rigid fit from their local east/north metres to the map's x, y. Queries are
then placed through lat/lon: VG names (UTM + zone, or lat/lon), a bag's NavSatFix, or a bag's
odometry aligned to the same bag's NavSatFix by a rigid fit on common stamps. Every step is
described in words (``how``) so the report says what was done.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

FIX_TYPE = 'sensor_msgs/msg/NavSatFix'
MIN_SPREAD_M = 2.0       # below this spread of the points a fit keeps rotation 0
GEO_SAMPLE = 4000        # places read to fit the geo frame of a map without origin
ALIGN_RMS_WARN_M = 10.0  # odometry-to-NavSatFix residual worth a warning


@dataclasses.dataclass
class Rigid2D:
    """x' = R(theta) x + t; ``rms_m`` the fit residual over ``pairs`` point pairs."""

    theta: float = 0.0
    tx: float = 0.0
    ty: float = 0.0
    rms_m: float = 0.0
    pairs: int = 0

    def apply(self, xy) -> np.ndarray:
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        c, s = math.cos(self.theta), math.sin(self.theta)
        return xy @ np.array([[c, s], [-s, c]]) + np.array([self.tx, self.ty])

    def describe(self) -> str:
        return (f'rotation {math.degrees(self.theta):.2f} deg, shift ({self.tx:.1f}, '
                f'{self.ty:.1f}) m, rms {self.rms_m:.2f} m over {self.pairs} pairs')


def fit_rigid2d(src, dst) -> Rigid2D:
    """Least-squares rotation + translation taking ``src`` (N,2) onto ``dst`` (N,2), NaN rows
    ignored; translation only when the points spread less than ``MIN_SPREAD_M``."""
    a, b = np.asarray(src, np.float64).reshape(-1, 2), np.asarray(dst, np.float64).reshape(-1, 2)
    ok = np.isfinite(a).all(1) & np.isfinite(b).all(1)
    a, b = a[ok], b[ok]
    if not len(a):
        raise ValueError('no point pairs to align the frames with')
    ca, cb = a.mean(0), b.mean(0)
    da, db = a - ca, b - cb
    theta = 0.0
    if np.sqrt((da ** 2).sum(1).mean()) >= MIN_SPREAD_M:
        cross = (da[:, 0] * db[:, 1] - da[:, 1] * db[:, 0]).sum()
        theta = math.atan2(cross, (da * db).sum())
    fit = Rigid2D(theta, 0.0, 0.0, 0.0, len(a))
    t = cb - fit.apply(ca)[0]
    fit.tx, fit.ty = float(t[0]), float(t[1])
    fit.rms_m = float(np.sqrt(((fit.apply(a) - b) ** 2).sum(1).mean()))
    return fit


class MapGeo:
    """lat/lon -> a map's x, y: through its UTM ``origin``, or a fit of its places' lat/lon."""

    def __init__(self, origin=None, local=None, fit: Optional[Rigid2D] = None, how: str = ''):
        self.origin, self.local, self.fit, self.how = origin, local, fit, how

    @classmethod
    def of_map(cls, manifest: dict, store=None) -> Optional['MapGeo']:
        """The map's geo reference; None when it has neither an origin nor place lat/lon."""
        from vpr_ros.geo import MapOrigin
        if manifest.get('origin'):
            o = MapOrigin(**manifest['origin'])
            return cls(origin=o, how=f'map origin (UTM {o.zone_number}{o.zone_letter})')
        if store is None or not store.num_places:
            return None
        ids = np.unique(np.linspace(0, store.num_places - 1, min(store.num_places, GEO_SAMPLE))
                        .astype(np.int64))
        places = store.get_places(ids)
        ll = np.array([[p.lat, p.lon] for p in places], np.float64)
        ok = np.isfinite(ll).all(1)
        if not ok.any():
            return None
        local = MapOrigin.from_latlon(*ll[ok][0])
        fit = fit_rigid2d(local.latlon_to_xy(ll[ok, 0], ll[ok, 1]),
                          store.positions(ids[ok])[:, :2])
        return cls(local=local, fit=fit,
                   how=f'lat/lon of {int(ok.sum())} map places fitted to their x, y '
                       f'({fit.describe()})')

    def latlon_to_xy(self, lat, lon) -> np.ndarray:
        if self.origin is not None:
            return self.origin.latlon_to_xy(lat, lon)
        return self.fit.apply(self.local.latlon_to_xy(lat, lon))

    def vg_xy(self, records) -> np.ndarray:
        """(N,2) map x, y of VG records: UTM names through the origin, else via lat/lon."""
        if self.origin is not None:
            from vpr_ros.io.vg import vg_xy
            return vg_xy(records, self.origin)
        import utm
        ll = np.full((len(records), 2), np.nan)
        for i, r in enumerate(records):
            if math.isfinite(r.lat) and math.isfinite(r.lon):
                ll[i] = r.lat, r.lon
            elif r.zone_number and r.zone_letter:
                ll[i] = utm.to_latlon(r.utm_e, r.utm_n, r.zone_number, r.zone_letter,
                                      strict=False)
        return self.latlon_to_xy(ll[:, 0], ll[:, 1])


def choose_pose_topic(topics: Dict[str, str], named: str, geo: bool) -> Tuple[str, str]:
    """(pose topic, why) for a bag's ground truth; ('', why) when the bag reader should pick
    (one pose topic, or none: it then says what is wrong). Several topics: a geo-referenced
    map takes the bag's NavSatFix (absolute, no drift); a map without geo reference takes the
    only local pose topic (a NavSatFix cannot be placed in its frame)."""
    from vpr_ros.io.bag_poses import norm_type, POSE_TYPES
    if named:
        return named, 'given with --pose-topic'
    poses = sorted(t for t, m in topics.items() if norm_type(m) in POSE_TYPES)
    fixes = [t for t in poses if norm_type(topics[t]) == FIX_TYPE]
    local = [t for t in poses if t not in fixes]
    if len(poses) <= 1:
        return '', 'the only pose topic'
    if geo and len(fixes) == 1:
        return fixes[0], (f'default: NavSatFix for a geo-referenced map, among '
                          f'{", ".join(poses)} (override with --pose-topic)')
    if not geo and len(local) == 1:
        return local[0], (f'default: the local pose topic, the map has no geo reference for '
                          f'NavSatFix, among {", ".join(poses)} (override with --pose-topic)')
    return '', 'ambiguous'


def fix_topics(topics: Dict[str, str]) -> Sequence[str]:
    from vpr_ros.io.bag_poses import norm_type
    return sorted(t for t, m in topics.items() if norm_type(m) == FIX_TYPE)


def nearest_distances(points, map_xy, chunk: int = 512) -> np.ndarray:
    """(N,) distance of each point to its nearest map position (inf without map positions)."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    ref = np.asarray(map_xy, np.float64).reshape(-1, 2)
    ref = ref[np.isfinite(ref).all(1)]
    out = np.full(len(pts), np.inf)
    if not len(ref):
        return out
    for s in range(0, len(pts), chunk):
        d = pts[s:s + chunk, None, :] - ref[None, :, :]
        out[s:s + chunk] = np.sqrt((d ** 2).sum(-1)).min(1)
    return out


def place_bag_track(reader, geo: Optional[MapGeo], tolerance: float) -> str:
    """Put the pose track of ``reader`` (io.bags.BagReader) into the map frame, in place;
    returns what was done. NavSatFix goes through ``geo``; a local track (odometry) is aligned
    to the bag's NavSatFix when the map is geo-referenced, else taken as it is."""
    import logging
    from vpr_ros.io.bag_poses import fill_fix_track, norm_type
    log = logging.getLogger('vpr_ros.evaluation')
    track, topic = reader.pose_track(), reader.pose_topic
    if not topic or not len(track):
        return 'no poses'
    if norm_type(reader.topics[topic]) == FIX_TYPE:
        if geo is None:
            log.warning('the map has no geo reference (no origin, no place lat/lon): the '
                        'NavSatFix of %s cannot be put into its frame; give --pose-topic with '
                        'a pose topic in the map frame', topic)
            return f'{topic} (NavSatFix) placed at the bag\'s first fix, not in the map frame'
        fill_fix_track(track.samples, geo)
        return f'{topic} (NavSatFix) lat/lon -> map frame through the {geo.how}'
    fixes = fix_topics(reader.topics)
    if geo is None or not fixes:
        why = '' if geo is None else '; the bag has no NavSatFix to align them with the map'
        return f'{topic} poses as recorded (taken to be in the map frame){why}'
    from vpr_ros.io.bags import BagReader
    with BagReader(reader.path, reader.image_topic, fixes[0], None, tolerance) as fr:
        fix = fr.pose_track().samples
    fix_xy = geo.latlon_to_xy([s.lat for s in fix], [s.lon for s in fix])
    near = [track.at(s.stamp, max(tolerance, 0.5)) for s in fix]
    src = [(p.x, p.y) if p is not None else (math.nan, math.nan) for p in near]
    try:
        fit = fit_rigid2d(src, fix_xy)
    except ValueError:
        log.warning('%s: no %s fix close in time to the poses of %s; they are taken as '
                    'recorded', reader.path, fixes[0], topic)
        return f'{topic} poses as recorded (no NavSatFix close in time to align them)'
    new = fit.apply([(s.x, s.y) for s in track.samples])
    for s, (x, y) in zip(track.samples, new.tolist()):
        s.x, s.y = x, y
        s.yaw = math.atan2(math.sin(s.yaw + fit.theta), math.cos(s.yaw + fit.theta))
    if fit.rms_m > ALIGN_RMS_WARN_M:
        log.warning('aligning %s to %s left %.1f m rms: the ground truth is approximate',
                    topic, fixes[0], fit.rms_m)
    return f'{topic} aligned to {fixes[0]} (NavSatFix), then the {geo.how}: {fit.describe()}'
