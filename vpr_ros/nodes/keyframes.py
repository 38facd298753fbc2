"""Validate Keyframe messages and turn them into (descriptors, PlaceRecords)."""
from __future__ import annotations

import math

import numpy as np

from vpr_ros.imaging import decode_compressed
from vpr_ros.nodes.conversions import stamp_seconds
from vpr_ros.nodes.map_messages import yaw_of_pose


def keyframes_to_places(keyframes, store, cfg, encode_image):
    """All keyframes validated first; any bad one refuses the whole request (ValueError)."""
    from vpr_ros.mapstore import PlaceRecord
    descs, places = [], []
    for i, kf in enumerate(keyframes):
        where = f'keyframe {i} (robot {kf.robot_id!r})'
        if kf.header.frame_id != cfg.frame_id:
            raise ValueError(f'{where}: pose is in frame {kf.header.frame_id!r}, not the map '
                             f'frame {cfg.frame_id!r}; transform it to {cfg.frame_id!r} first')
        p = kf.pose.position
        if not all(math.isfinite(v) for v in (p.x, p.y, p.z)):
            raise ValueError(f'{where}: pose position is not finite')
        if len(kf.descriptor):
            if kf.encoder != store.encoder:
                raise ValueError(f'{where}: descriptor from encoder {kf.encoder!r}, the map '
                                 f'was built by {store.encoder!r}')
            d = np.asarray(kf.descriptor, dtype=np.float32)
        else:
            if not len(kf.image.data):
                raise ValueError(f'{where}: neither a descriptor nor an image')
            d = np.asarray(encode_image(decode_compressed(kf.image.format, kf.image.data)),
                           dtype=np.float32)
        if d.size != store.dim:
            raise ValueError(f'{where}: descriptor has {d.size} values, the map expects '
                             f'{store.dim}')
        if not np.all(np.isfinite(d)):
            raise ValueError(f'{where}: descriptor contains NaN or infinite values')
        descs.append(d)
        places.append(PlaceRecord(
            x=p.x, y=p.y, z=p.z, yaw=yaw_of_pose(kf.pose), lat=kf.latitude,
            lon=kf.longitude, robot_id=kf.robot_id, session=kf.session, source='keyframe',
            stamp=stamp_seconds(kf.header.stamp)))
    return np.stack(descs), places
