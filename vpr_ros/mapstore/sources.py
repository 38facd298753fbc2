"""Map sources: each yields ``SourceItem``s (an image path or RGB array plus its PlaceRecord).

* ``vg_source``: VG benchmark folders (``database/``, optionally ``queries/``);
* ``manifest_source``: a CSV or JSON list of image paths with x/y[/yaw] or lat/lon;
* ``bag_source``: keyframes of a rosbag (image topic + pose topic, see vpr_ros.io.bags).

Items come in a deterministic order so an interrupted build can resume by item index.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Iterator, List, Optional, Union

import numpy as np

from vpr_ros.geo import MapOrigin
from vpr_ros.mapstore.places import PlaceRecord

log = logging.getLogger(__name__)


@dataclasses.dataclass
class SourceItem:
    image: Union[str, np.ndarray]   # file path (decoded lazily) or RGB uint8 (H,W,3)
    place: PlaceRecord


class SourceError(ValueError):
    """A source that cannot be read; the message says what is wrong and how to fix it."""


def heading_to_yaw(heading_deg: float) -> float:
    """Compass heading (degrees clockwise from north) -> REP 103 yaw (radians CCW from east)."""
    if heading_deg is None or not math.isfinite(heading_deg):
        return 0.0
    return math.atan2(math.sin(math.radians(90.0 - heading_deg)),
                      math.cos(math.radians(90.0 - heading_deg)))


class Source:
    """Base: ``origin`` (MapOrigin or None) is known once the items are listed."""

    origin: Optional[MapOrigin] = None
    warnings: int = 0

    def __iter__(self) -> Iterator[SourceItem]:
        raise NotImplementedError


class VGSource(Source):
    """VG-layout folder: UTM names -> map frame anchored at ``origin`` or the first image."""

    def __init__(self, folder, origin: Optional[MapOrigin] = None,
                 subsets=('database',)):
        from vpr_ros.io.vg import list_vg_folder
        root = Path(folder)
        if not root.is_dir():
            raise SourceError(f'VG folder {root} does not exist')
        dirs = [root / s for s in subsets if (root / s).is_dir()] or [root]
        self.records = [r for d in dirs for r in list_vg_folder(d)]
        self.origin = origin
        first = self.records[0]
        if self.origin is None:
            if first.zone_number and first.zone_letter:
                self.origin = MapOrigin(first.utm_e, first.utm_n, first.zone_number,
                                        first.zone_letter)
            elif math.isfinite(first.lat) and math.isfinite(first.lon):
                self.origin = MapOrigin.from_latlon(first.lat, first.lon)
        self._shift = ((self.origin.easting, self.origin.northing) if self.origin
                       else (first.utm_e, first.utm_n))

    def __iter__(self):
        for r in self.records:
            x, y = r.utm_e - self._shift[0], r.utm_n - self._shift[1]
            lat, lon = r.lat, r.lon
            if not (math.isfinite(lat) and math.isfinite(lon)) and self.origin is not None:
                lat, lon = self.origin.xy_to_latlon([[x, y]])[0]
            sub = Path(r.path).parent.name
            yield SourceItem(r.path, PlaceRecord(
                x=x, y=y, yaw=heading_to_yaw(r.heading), lat=float(lat), lon=float(lon),
                source=f'vg:{sub}', note=' '.join(s for s in (r.timestamp, r.note) if s)))


def _num(row: dict, key: str, default=math.nan) -> float:
    v = row.get(key)
    if v is None or v == '':
        return default
    try:
        return float(v)
    except (TypeError, ValueError):
        raise SourceError(f'column {key!r}: {v!r} is not a number') from None


class ManifestSource(Source):
    """CSV/JSON manifest rows: ``image`` (or ``path``) relative to the manifest, and x, y
    (metres) or lat, lon; optional z, yaw (rad) or yaw_deg / heading_deg, robot_id,
    session, stamp, note. JSON is a list of rows or {"origin": {...}, "images": [...]}."""

    def __init__(self, path, origin: Optional[MapOrigin] = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f'manifest {self.path} does not exist')
        self.rows = self._read()
        if not self.rows:
            raise SourceError(f'manifest {self.path} lists no images')
        cols = set().union(*(r.keys() for r in self.rows))
        if not cols & {'image', 'path'}:
            raise SourceError(f'{self.path}: needs an "image" (or "path") column; has '
                              f'{sorted(cols)}')
        self.has_xy = {'x', 'y'} <= cols
        if not self.has_xy and not {'lat', 'lon'} <= cols:
            raise SourceError(f'{self.path}: needs x,y or lat,lon columns; has {sorted(cols)}')
        self.origin = origin or self.origin
        if not self.has_xy and self.origin is None:
            r0 = self.rows[0]
            self.origin = MapOrigin.from_latlon(_num(r0, 'lat'), _num(r0, 'lon'))

    def _read(self) -> List[dict]:
        text = self.path.read_text()
        if self.path.suffix.lower() == '.json':
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise SourceError(f'{self.path}: invalid JSON ({exc})') from None
            if isinstance(data, dict):
                if data.get('origin'):
                    o = data['origin']
                    self.origin = (MapOrigin.from_latlon(o['lat'], o['lon']) if 'lat' in o
                                   else MapOrigin(**o))
                data = data.get('images', [])
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                raise SourceError(f'{self.path}: JSON must be a list of objects or '
                                  f'{{"images": [...]}}')
            return data
        return list(csv.DictReader(text.splitlines()))

    def __iter__(self):
        base = self.path.parent
        for i, row in enumerate(self.rows):
            name = row.get('image') or row.get('path')
            if not name:
                raise SourceError(f'{self.path}: row {i} has no image path')
            lat, lon = _num(row, 'lat'), _num(row, 'lon')
            if self.has_xy and math.isfinite(_num(row, 'x')):
                x, y = _num(row, 'x'), _num(row, 'y')
            elif math.isfinite(lat) and math.isfinite(lon) and self.origin is not None:
                x, y = self.origin.latlon_to_xy(lat, lon)[0]
            else:
                raise SourceError(f'{self.path}: row {i} ({name}) has neither x,y nor lat,lon')
            if 'yaw' in row and row['yaw'] not in ('', None):
                yaw = _num(row, 'yaw')
            elif row.get('yaw_deg') not in ('', None):
                yaw = math.radians(_num(row, 'yaw_deg'))
            else:
                yaw = heading_to_yaw(_num(row, 'heading_deg'))
            yield SourceItem(str(base / name), PlaceRecord(
                x=float(x), y=float(y), z=_num(row, 'z', 0.0), yaw=yaw, lat=lat, lon=lon,
                source=f'manifest:{self.path.name}', robot_id=str(row.get('robot_id') or ''),
                session=str(row.get('session') or ''), stamp=_num(row, 'stamp', 0.0),
                note=str(row.get('note') or '')))


def _triple(values, name: str):
    """(x, y, yaw) from a BuildConfig tuple (the CLI gives strings); None when empty."""
    if values is None or len(values) == 0:
        return None
    try:
        vals = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise SourceError(f'{name}: {list(values)} are not numbers; give X Y YAW (m, m, rad)') \
            from None
    if len(vals) != 3 or not all(math.isfinite(v) for v in vals):
        raise SourceError(f'{name}: give 3 finite numbers X Y YAW (metres, metres, radians), '
                          f'not {list(values)}')
    return vals


class BagSource(Source):
    """Keyframes of a bag: frames with a pose, kept after moving/turning enough.

    Frames: the pose messages must be in ``map_frame`` (their header.frame_id; NavSatFix is
    geographic) unless ``anchor`` (x, y, yaw of their frame in ``map_frame``) is given. The
    stored pose is the camera's: the pose of the body frame (Odometry child_frame_id, NavSatFix
    frame_id, else base_link) composed with the camera mount, read from /tf_static (body ->
    the image's frame_id, chained) with ``extrinsics='tf_static'``, or given by hand as
    ``camera_mount`` (x, y, yaw of the camera in the body frame); ``extrinsics='none'`` stores
    the body pose. ``self.frames`` records what was applied (the build summary shows it).
    """

    def __init__(self, path, image_topic=None, pose_topic=None, origin=None,
                 keyframes=None, tolerance_s: float = 0.1, robot_id: str = '',
                 session: str = '', map_frame: str = 'map', anchor=(),
                 extrinsics: str = 'tf_static', camera_mount=()):
        from vpr_ros.io.bag_poses import KeyframeConfig
        from vpr_ros.io.bags import BagError, BagReader
        try:
            self.reader = BagReader(path, image_topic, pose_topic, origin, tolerance_s)
        except BagError as exc:
            raise SourceError(str(exc)) from None
        self.keyframes = keyframes or KeyframeConfig()
        self.robot_id, self.session = robot_id, session or Path(path).name
        self.reader.pose_track()  # fixes the origin for NavSatFix bags
        self.origin = self.reader.origin
        self.map_frame = (map_frame or 'map').lstrip('/')
        self.anchor = _triple(anchor, 'anchor')
        self.mount = _triple(camera_mount, 'camera_mount')
        self.frames = {'map_frame': self.map_frame}
        self._check_pose_frame()
        self._camera_mount(extrinsics)
        log.info('bag %s: %s', self.reader.path.name, self.frames['applied'])

    def _check_pose_frame(self) -> None:
        r, mf = self.reader, self.map_frame
        named = sorted(f for f in r.pose_frames if f)
        applied = []
        if None in r.pose_frames:  # NavSatFix: geographic, placed via the map origin
            if self.anchor is not None:
                raise SourceError(f'{r.path}: {r.pose_topic} is NavSatFix (geographic), '
                                  f'already placed in the map frame through its origin; '
                                  f'--anchor is for a track in a local frame, drop it')
            self.frames['pose_frame'] = 'geographic (NavSatFix)'
            applied.append('poses: NavSatFix, geographic -> map frame via the map origin')
        elif len(named) > 1:
            raise SourceError(f'{r.path}: the messages of {r.pose_topic} are in several frames '
                              f'({", ".join(repr(f) for f in named)}); one map needs one frame')
        else:
            frame = named[0] if named else ''
            if '' in r.pose_frames:
                r._warn('%d messages of %s have no header.frame_id; taken as %r',
                        r.pose_frames[''], r.pose_topic, frame or mf)
            frame = frame or mf
            self.frames['pose_frame'] = frame
            if self.anchor is not None:
                applied.append(f'poses: frame {frame!r} anchored in {mf!r} at x={self.anchor[0]:g}'
                               f' m, y={self.anchor[1]:g} m, yaw={self.anchor[2]:g} rad')
                self.frames['anchor'] = list(self.anchor)
            elif frame != mf:
                raise SourceError(
                    f'{r.path}: the poses of {r.pose_topic} are in frame {frame!r}, not the map '
                    f'frame {mf!r}; a map from them would put places in {frame!r} coordinates, '
                    f'which drift and restart with every run. Either pass where {frame!r} sits '
                    f'in {mf!r} as --anchor X Y YAW (metres, metres, radians; --anchor 0 0 0 if '
                    f'{frame!r} coincided with {mf!r} for this recording), or choose a pose '
                    f'topic in {mf!r} with --pose-topic (the bag has: '
                    f'{", ".join(sorted(r.topics))}), or build a map in that frame with '
                    f'--map-frame {frame}')
            else:
                applied.append(f'poses: already in {mf!r}')
        self._applied = applied

    def _camera_mount(self, extrinsics: str) -> None:
        from vpr_ros.io.bag_poses import is_optical, planar_mount
        r = self.reader
        bodies = sorted(((n, f) for f, n in r.body_frames.items() if f), reverse=True)
        body = bodies[0][1] if bodies else 'base_link'
        self.frames['body_frame'] = body
        how = None
        if self.mount is not None:
            how = 'given by hand (--camera-mount)'
        elif extrinsics in ('none', 'off', ''):
            self._applied.append(f'camera extrinsics off: places store the {body!r} pose')
        elif extrinsics == 'tf_static':
            tree = r.static_transforms()
            cam = r.image_frame()
            self.frames['camera_frame'] = cam
            if tree is None:
                self._applied.append(f'no /tf_static in the bag: places store the {body!r} pose '
                                     f'(give --camera-mount X Y YAW if the camera is offset)')
            elif not cam:
                r._warn('images of %s have no header.frame_id: camera extrinsics not applied',
                        r.image_topic)
                self._applied.append(f'image frame unknown: places store the {body!r} pose')
            else:
                found = tree.lookup(body, cam)
                if found is None:
                    r._warn('/tf_static has no transform chain %s -> %s: camera extrinsics not '
                            'applied (give --camera-mount X Y YAW)', body, cam)
                    self._applied.append(f'no /tf_static chain {body!r} -> {cam!r}: places '
                                         f'store the {body!r} pose')
                else:
                    m, chain = found
                    optical = is_optical(cam, m)
                    try:
                        self.mount = planar_mount(m, optical)
                    except ValueError as exc:
                        raise SourceError(f'{r.path}: /tf_static {body} -> {cam}: {exc}; give '
                                          f'--camera-mount X Y YAW or --camera-extrinsics none') \
                            from None
                    how = (f'from /tf_static {" -> ".join(chain)}'
                           f'{" (optical frame: z forward)" if optical else ""}')
        else:
            raise SourceError(f'camera_extrinsics {extrinsics!r}: use tf_static or none')
        if self.mount is not None:
            x, y, yaw = self.mount
            self.frames['camera_mount'] = [x, y, yaw]
            self.frames['camera_mount_from'] = how
            self._applied.append(f'camera pose = {body!r} pose + mount x={x:.3f} m, y={y:.3f} m, '
                                 f'yaw={yaw:.4f} rad {how}')
        self.frames['applied'] = '; '.join(self._applied)

    @property
    def warnings(self) -> int:
        return self.reader.warnings

    def __iter__(self):
        from vpr_ros.io.bag_poses import anchor2d, compose2d, KeyframeSelector
        select = KeyframeSelector(self.keyframes)
        for f in self.reader.frames():
            if f.pose is None:
                continue
            p = f.pose
            if self.anchor is not None:
                p = anchor2d(p, self.anchor)
            if self.mount is not None:
                p = compose2d(p, self.mount)
                if (math.isfinite(p.lat) and self.origin is not None
                        and (self.mount[0] or self.mount[1])):  # the camera's lat/lon
                    p.lat, p.lon = (float(v) for v in self.origin.xy_to_latlon([[p.x, p.y]])[0])
            if not select(p):
                continue
            yield SourceItem(f.rgb, PlaceRecord(
                x=p.x, y=p.y, z=p.z, yaw=p.yaw, lat=p.lat, lon=p.lon,
                source=f'bag:{self.reader.path.name}', robot_id=self.robot_id,
                session=self.session, stamp=f.stamp))
