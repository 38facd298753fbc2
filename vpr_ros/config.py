"""Settings of the nodes, one dataclass each: the single definition of every parameter.

config/*.yaml holds the same fields under ``node_name: ros__parameters:``; the nodes declare
them from these dataclasses (vpr_ros.nodes.params) and the CLIs map onto them too.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Type, TypeVar

from vpr_ros.localization.place_filter import FilterConfig

T = TypeVar('T')


@dataclasses.dataclass
class QueryEncoderConfig:
    """query_encoder: camera images in, descriptors out."""

    image_topic: str = 'camera/image_raw'             # base topic, as image_transport names it
    # raw: sensor_msgs/Image on image_topic; compressed: sensor_msgs/CompressedImage (JPEG/PNG)
    # on <image_topic>/compressed. One of them, never both (a camera often publishes both).
    transport: str = 'raw'
    camera_info_topic: str = ''  # sensor_msgs/CameraInfo, shown in ~/stats ('' = none)
    descriptor_topic: str = 'vpr/descriptor'
    # registered model name (vpr-ros profile); 'auto': the query network shipped for the map's
    # gallery model when there is one (asymmetric), else the map's own; '' or 'map': the map's own
    model: str = 'auto'
    checkpoint: str = ''                              # trained query network (overrides model)
    backend: str = 'torch'                            # torch | torchscript | onnxruntime
    threads: int = 0                                  # intra-op threads; 0 = library default
    # onnxruntime's pool busy-waits between runs when true: a little faster alone, but it takes
    # CPU from the rest of the robot's stack between frames
    ort_spinning: bool = False
    input_size: List[int] = dataclasses.field(default_factory=list)  # [h, w]; [] = model default
    map_path: str = ''  # if set, refuse a checkpoint incompatible with it
    image_qos: str = 'sensor_data'  # sensor_data (best effort) | reliable (lossless replays)
    # frames with more pixels are refused before decoding (4096*4096: admits 4K and 12 MP)
    max_image_pixels: int = 16777216
    # extract the frame's local features for the matcher's verification when the map at
    # map_path has them (sent in the Descriptor message); local_keypoints per frame
    local_features: bool = True
    local_keypoints: int = 512
    # frames whose descriptor is at least this similar (cosine) to one of a black, white,
    # uniform or noise frame are dropped, so a lens cap never becomes a pose prior
    # (vpr_ros.no_place); 0: the threshold measured for a shipped query network (none for
    # others); negative: off
    no_place_threshold: float = 0.0


@dataclasses.dataclass
class GalleryServerConfig:
    """gallery_server: serves the map store."""

    map_path: str = ''                                # map directory (vpr-ros build-map)
    default_k: int = 10
    frame_id: str = 'map'
    image_model: str = ''  # encodes keyframes sent as images ('' = refuse)
    image_checkpoint: str = ''
    autosave: bool = True                             # save after every successful add/merge
    dedup_radius_m: float = 2.0                       # geographic de-duplication of keyframes
    dedup_yaw_deg: float = 30.0
    dedup_similarity: float = 0.9
    maps_root: str = ''  # save_map/merge_map/map_path stay inside it ('' = map_path's parent)


@dataclasses.dataclass
class MatcherConfig:
    """matcher: descriptors in, place matches and pose priors out."""

    map_path: str = ''
    descriptor_topic: str = 'vpr/descriptor'
    match_topic: str = 'vpr/match'
    pose_topic: str = 'vpr/pose_prior'  # PoseWithCovarianceStamped (robot_localization pose0)
    frame_id: str = 'map'
    top_k: int = 10
    temperature: float = 0.02                         # softmax temperature over cosine scores
    cluster_radius_m: float = 10.0  # candidates this close to the best agree with it
    min_confidence: float = 0.5                       # below: match published with localized=false
    publish_unlocalized_prior: bool = False  # publish a pose prior even when not localized
    base_position_std_m: float = 2.0                  # floor of the prior's position std
    base_yaw_std_rad: float = 0.2                     # floor of the prior's yaw std
    map_reload_period_s: float = 2.0  # how often to check the map for a new version
    use_filter: bool = True  # temporal filter over frames (else single-frame)
    odom_topic: str = ''  # nav_msgs/Odometry for the filter ('' = none)
    calibration_file: str = ''                        # confidence calibration JSON ('' = identity)
    status_topic: str = 'vpr/status'                  # vpr_ros/LocalizationStatus
    status_timeout_s: float = 2.0  # status LOST after this long without a descriptor
    output_mode: str = 'pose0'                        # pose0 | initialpose | both
    initialpose_topic: str = 'initialpose'  # AMCL's topic (frame must be its global frame)
    initialpose_min_interval_s: float = 10.0  # rate limit of initialpose / set_pose events
    # robot_localization's set_pose topic: relocalization events reset its EKF there ('' = off)
    set_pose_topic: str = ''
    # the camera's pose in base_link (the map holds camera poses; priors are for base_link)
    camera_x_m: float = 0.0
    camera_y_m: float = 0.0
    camera_yaw_rad: float = 0.0
    # top-1 cosine below this = an unrecognised frame (lens cap, blank, noise, elsewhere): no
    # localized prior, the filter is not updated; -1 = from the map's own similarity statistics
    # (similarity.py); below -1: never
    min_similarity: float = -1.0
    hubness_reference: str = ''  # query network's CSLS reference (.npz of train asym; '' = off)
    hubness_k: int = 10                               # its neighbours per map entry
    hubness_candidates: int = 50                      # plain top-N re-scored with the biases
    # Descriptor.encoder names accepted besides the map's encoder and the hubness reference's
    # query network (e.g. a checkpoint trained for this map); '*' accepts any
    accepted_encoders: List[str] = dataclasses.field(default_factory=list)
    # geometric verification of the top-k with the map's local features (maps built without
    # them are not verified): candidates re-ranked by score + inlier_weight * min(inliers,
    # inlier_saturation) / inlier_saturation when inliers >= min_inliers; the best candidate
    # with >= inlier_saturation inliers is published as VERIFIED (PlaceMatch.pose_source);
    # verification stops early when no later candidate can overtake (docs/verification.md)
    verify: bool = True
    verify_top_k: int = 5
    min_inliers: int = 8
    inlier_weight: float = 0.5
    inlier_saturation: int = 20
    verify_keypoints: int = 512                       # query keypoints extracted per frame
    # metric pose from the verified views (when the map knows its intrinsics), else the place
    metric_pose: bool = True
    filter: FilterConfig = dataclasses.field(default_factory=FilterConfig)


def field_defaults(cls: Type[T]) -> Dict[str, Any]:
    """{field: default} of a settings dataclass."""
    out = {}
    for f in dataclasses.fields(cls):
        out[f.name] = f.default_factory() if f.default is dataclasses.MISSING else f.default
    return out


def from_dict(cls: Type[T], values: Dict[str, Any], strict: bool = True) -> T:
    """Build ``cls`` from a dict, rejecting unknown keys (a typo in YAML is an error)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown and strict:
        raise ValueError(f'unknown {cls.__name__} setting(s): {", ".join(unknown)}; '
                         f'known: {", ".join(sorted(fields))}')
    out = {}
    for k, v in values.items():
        if k not in fields:
            continue
        default = field_defaults(cls)[k]
        out[k] = from_dict(type(default), v, strict) if dataclasses.is_dataclass(default) \
            and isinstance(v, dict) else v
    return cls(**out)
