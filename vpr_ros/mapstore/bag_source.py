"""Map source from a rosbag: keyframes of an image topic matched with a pose topic by stamp,
checked for the pose frame, with the camera mount applied (vpr_ros.io.bags reads the bag)."""
from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

from vpr_ros.mapstore.places import PlaceRecord
from vpr_ros.mapstore.sources import Source, SourceError, SourceItem

log = logging.getLogger(__name__)


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
    ``self.camera``: the intrinsics of the CameraInfo topic beside the images (or None).
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
        self._pitch_deg = None  # camera tilt from /tf_static (the metric pose uses it)
        self._camera_mount(extrinsics)
        self._fix = self._fix_track()
        from vpr_ros.io.camera_info import read_bag_camera
        self.camera = read_bag_camera(self.reader)  # intrinsics the map's features store
        if self.camera and self._pitch_deg is not None:
            self.camera['pitch_deg'] = self._pitch_deg
        self.frames['intrinsics'] = self.camera['topic'] if self.camera else 'none'
        log.info('bag %s: %s', self.reader.path.name, self.frames['applied'])

    def _fix_track(self):
        """The bag's NavSatFix track when the poses come from another topic (/odom): places
        then keep the lat/lon of the fix interpolated at their image stamps."""
        from vpr_ros.io.bag_poses import fix_topic_beside
        from vpr_ros.io.bags import BagReader
        r = self.reader
        topic = fix_topic_beside(r.topics, r.pose_topic)
        if topic is None:
            return None
        with BagReader(r.path, r.image_topic, topic, None, r.tolerance_s) as fix_reader:
            track = fix_reader.pose_track()
            r.warnings += fix_reader.warnings
        if not len(track):
            return None
        self.frames['latlon_from'] = topic
        self.frames['applied'] += f'; lat/lon from {topic} (NavSatFix) at the image stamps'
        return track

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
                    fwd = m[:3, 2] if optical else m[:3, 0]
                    self._pitch_deg = math.degrees(math.atan2(fwd[2], math.hypot(*fwd[:2])))
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
        from vpr_ros.io.bag_poses import anchor2d, compose2d, KeyframeSelector, latlon_at
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
            if self._fix is not None and not math.isfinite(p.lat):
                lat, lon = latlon_at(self._fix, f.stamp)
                p = dataclasses.replace(p, lat=lat, lon=lon)
            yield SourceItem(f.rgb, PlaceRecord(
                x=p.x, y=p.y, z=p.z, yaw=p.yaw, lat=p.lat, lon=p.lon,
                source=f'bag:{self.reader.path.name}', robot_id=self.robot_id,
                session=self.session, stamp=f.stamp))
