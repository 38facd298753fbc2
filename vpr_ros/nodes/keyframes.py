"""Validate Keyframe messages and turn them into (descriptors, PlaceRecords)."""
from __future__ import annotations

import numpy as np

from vpr_ros.imaging import decode_compressed, DEFAULT_MAX_PIXELS
from vpr_ros.nodes.conversions import stamp_seconds
from vpr_ros.nodes.map_messages import yaw_of_pose
from vpr_ros.validation import check_descriptor, check_latlon, check_pose, check_text


def keyframes_to_places(keyframes, store, cfg, encode_image):
    """All keyframes validated first; any bad one refuses the whole request (ValueError)."""
    from vpr_ros.mapstore import PlaceRecord
    descs, places = [], []
    for i, kf in enumerate(keyframes):
        check_text(kf.robot_id, 'robot_id', f'keyframe {i}: ')
        where = f'keyframe {i} (robot {kf.robot_id!r})'
        check_text(kf.session, 'session', f'{where}: ')
        check_text(kf.header.frame_id, 'frame_id', f'{where}: ')
        check_text(kf.encoder, 'encoder', f'{where}: ')
        if kf.header.frame_id != cfg.frame_id:
            raise ValueError(f'{where}: pose is in frame {kf.header.frame_id!r}, not the map '
                             f'frame {cfg.frame_id!r}; transform it to {cfg.frame_id!r} first')
        check_pose(kf.pose, f'{where}: ')
        check_latlon(kf.latitude, kf.longitude, f'{where}: ')
        stamp = stamp_seconds(kf.header.stamp)
        if len(kf.descriptor):
            if kf.encoder != store.encoder:
                raise ValueError(f'{where}: descriptor from encoder {kf.encoder!r}, the map '
                                 f'was built by {store.encoder!r}')
            d = kf.descriptor
        else:
            if not len(kf.image.data):
                raise ValueError(f'{where}: neither a descriptor nor an image')
            d = encode_image(decode_compressed(kf.image.format, kf.image.data,
                                               DEFAULT_MAX_PIXELS))
        descs.append(check_descriptor(d, store.dim, f'{where}: '))
        p = kf.pose.position
        places.append(PlaceRecord(
            x=p.x, y=p.y, z=p.z, yaw=yaw_of_pose(kf.pose), lat=kf.latitude,
            lon=kf.longitude, robot_id=kf.robot_id, session=kf.session, source='keyframe',
            stamp=stamp))
    return np.stack(descs), places
