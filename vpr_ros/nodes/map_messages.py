"""Map store records <-> vpr_ros messages."""
from __future__ import annotations

import math

from geometry_msgs.msg import Pose

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
    out = []
    for rec, score in zip(store.get_places(place_ids), scores):
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
