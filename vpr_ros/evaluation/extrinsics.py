"""The camera -> base_link mount an evaluation applies to each prior, as the matcher node does.

A map stores camera poses; the matcher turns a match into a base_link prior with its
``camera_x_m``/``camera_y_m``/``camera_yaw_rad`` parameters (localization.frames.
base_from_camera), and a bag's ground truth is the pose of its body frame. ``vpr-ros evaluate``
on a bag therefore takes the mount from the bag's /tf_static (body frame -> the images'
frame_id, chained, as map building does) when present, else from the matcher parameters, and
says which one it used. VG folders hold camera poses on both sides: no mount is applied.
"""
from __future__ import annotations

import math
from typing import Dict, Tuple

Mount = Tuple[float, float, float]


def _params_mount(m) -> Mount:
    return (float(m.camera_x_m), float(m.camera_y_m), float(m.camera_yaw_rad))


def _describe(mount: Mount) -> str:
    return f'x={mount[0]:.3f} m, y={mount[1]:.3f} m, yaw={mount[2]:.4f} rad'


def bag_mount(bag: str, image_topic: str = '', pose_topic: str = '') -> Tuple[Mount, str]:
    """(camera mount in the body frame, how it was found) from ``bag``'s /tf_static; (None,
    why not) when the bag has no /tf_static, no image frame_id or no chain to it."""
    from vpr_ros.io.bag_poses import is_optical, planar_mount
    from vpr_ros.io.bags import BagError, BagReader
    try:
        reader = BagReader(bag, image_topic or None, pose_topic or None)
    except BagError:  # no single pose topic: the body frame is then base_link
        reader = BagReader(bag, image_topic or None, require_pose=False)
    with reader:
        tree = reader.static_transforms()
        if tree is None:
            return None, 'no /tf_static in the bag'
        if reader.pose_topic:
            reader.pose_track()
        bodies = sorted(((n, f) for f, n in reader.body_frames.items() if f), reverse=True)
        body = bodies[0][1] if bodies else 'base_link'
        cam = reader.image_frame()
        if not cam:
            return None, f'images of {reader.image_topic} have no header.frame_id'
        found = tree.lookup(body, cam)
        if found is None:
            return None, f'/tf_static has no chain {body!r} -> {cam!r}'
        m, chain = found
        optical = is_optical(cam, m)
        try:
            mount = planar_mount(m, optical)
        except ValueError as exc:
            return None, f'/tf_static {body} -> {cam}: {exc}'
    return mount, (f'from /tf_static {" -> ".join(chain)}'
                   f'{" (optical frame: z forward)" if optical else ""}')


def eval_extrinsics(cfg, matcher) -> Tuple[Mount, Dict]:
    """(mount applied to every prior, the report's description of it) for EvalConfig ``cfg``
    and MatcherConfig ``matcher``."""
    if not cfg.bag:
        return (0.0, 0.0, 0.0), {'mount': [0.0, 0.0, 0.0], 'source': 'none: VG queries and '
                                 'the map are both camera poses'}
    params = _params_mount(matcher)
    mount, how = bag_mount(cfg.bag, cfg.image_topic, cfg.pose_topic)
    if mount is None:
        src = (f'matcher parameters camera_x_m/camera_y_m/camera_yaw_rad ({how})'
               if any(params) else f'none: camera at base_link ({how}; matcher parameters 0)')
        return params, {'mount': list(params), 'source': src}
    info = {'mount': [float(v) for v in mount], 'source': how}
    if any(params) and not all(math.isclose(a, b, abs_tol=1e-3) for a, b in zip(mount, params)):
        info['note'] = (f'the matcher parameters say {_describe(params)}, the bag\'s /tf_static '
                        f'{_describe(mount)}: the bag\'s was used; set the node parameters to it')
    return mount, info


def with_bag_mount(cfg, matcher):
    """(``matcher`` with camera_x_m/camera_y_m/camera_yaw_rad set to the mount offline
    evaluation applies, its description): for a live evaluation, whose matcher node applies
    them itself."""
    import dataclasses
    mount, info = eval_extrinsics(cfg, matcher)
    if not cfg.bag:
        return matcher, info
    return dataclasses.replace(matcher, camera_x_m=mount[0], camera_y_m=mount[1],
                               camera_yaw_rad=mount[2]), info
