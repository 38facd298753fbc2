"""Map store records <-> vpr_ros messages."""
from __future__ import annotations

import math

from geometry_msgs.msg import Pose
import numpy as np

from vpr_ros.msg import MapInfo, PlaceCandidate
from vpr_ros.retrieval import quaternion_to_yaw, yaw_to_quaternion


def pose_from_xyz_yaw(x: float, y: float, z: float, yaw: float) -> Pose:
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = float(x), float(y), float(z)
    qx, qy, qz, qw = yaw_to_quaternion(float(yaw))
    pose.orientation.x, pose.orientation.y = qx, qy
    pose.orientation.z, pose.orientation.w = qz, qw
    return pose


def yaw_of_pose(pose: Pose) -> float:
    q = pose.orientation
    if q.x == q.y == q.z == q.w == 0.0:  # an all-zero quaternion means "no orientation"
        return 0.0
    return quaternion_to_yaw(q.x, q.y, q.z, q.w)


def candidates_from_store(store, place_ids, scores):
    """PlaceCandidate messages for the given place ids and scores (best first)."""
    return candidates_from_places(store.get_places(place_ids), scores)


def candidates_from_places(places, scores):
    """PlaceCandidate messages for PlaceRecords and their scores (best first)."""
    out = []
    for rec, score in zip(places, scores):
        c = PlaceCandidate()
        c.place_id = int(rec.id)
        c.score = float(score)
        c.pose = pose_from_xyz_yaw(rec.x, rec.y, rec.z, rec.yaw)
        c.latitude = float(rec.lat) if rec.lat is not None else math.nan
        c.longitude = float(rec.lon) if rec.lon is not None else math.nan
        c.robot_id = rec.robot_id or ''
        c.session = rec.session or ''
        out.append(c)
    return out


def map_info_from_store(store) -> MapInfo:
    info = MapInfo()
    info.map_path = str(store.path)
    info.encoder = store.encoder
    info.dim = int(store.dim)
    info.num_places = int(store.num_places)
    info.version = str(store.version)
    info.index_type = str(store.index_type)
    info.frame_id = store.frame_id
    stats = store.stats()
    robots = stats.get('robots', {})
    sessions = stats.get('sessions', {})
    info.robot_ids = [str(k) for k in robots]
    info.places_per_robot = [int(v) for v in robots.values()]
    info.sessions = [str(k) for k in sessions]
    info.places_per_session = [int(v) for v in sessions.values()]
    return info


# Robot colours for the map markers (RGB), cycled over robot ids.
_PALETTE = [(0.12, 0.47, 0.71), (1.0, 0.5, 0.05), (0.17, 0.63, 0.17), (0.84, 0.15, 0.16),
            (0.58, 0.4, 0.74), (0.55, 0.34, 0.29), (0.89, 0.47, 0.76), (0.5, 0.5, 0.5)]
MAX_MARKER_POINTS = 50_000


def place_markers(store, frame_id: str, stamp):
    """One POINTS marker per robot (places, subsampled to MAX_MARKER_POINTS in total)."""
    from geometry_msgs.msg import Point
    from std_msgs.msg import ColorRGBA
    from visualization_msgs.msg import Marker, MarkerArray
    out = MarkerArray()
    clear = Marker(action=Marker.DELETEALL)
    clear.header.frame_id = frame_id
    out.markers.append(clear)
    n = int(store.num_places)
    if n == 0:
        return out
    ids = np.arange(n)
    if n > MAX_MARKER_POINTS:
        ids = np.linspace(0, n - 1, MAX_MARKER_POINTS).astype(np.int64)
    pos = store.positions(ids)
    robots = np.array([p.robot_id or '' for p in store.get_places(ids)])
    for k, robot in enumerate(sorted(set(robots.tolist()))):
        m = Marker(ns=f'places/{robot or "map"}', id=k, type=Marker.POINTS, action=Marker.ADD)
        m.header.frame_id, m.header.stamp = frame_id, stamp
        m.scale.x = m.scale.y = 1.0
        r, g, b = _PALETTE[k % len(_PALETTE)]
        m.color = ColorRGBA(r=r, g=g, b=b, a=1.0)
        m.pose.orientation.w = 1.0
        m.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))
                    for p in pos[robots == robot]]
        out.markers.append(m)
    return out
