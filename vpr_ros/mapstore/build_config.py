"""Settings of ``vpr-ros build-map`` (vpr_ros.mapstore.build), one CLI flag per field."""
from __future__ import annotations

import dataclasses
from typing import Tuple


@dataclasses.dataclass
class BuildConfig:
    """Settings of ``vpr-ros build-map`` (one CLI flag per field)."""

    model: str = ''
    checkpoint: str = ''
    source: str = 'vg'                 # vg | manifest | bag | msls | gsv-cities
    input: str = ''
    out: str = ''
    image_topic: str = ''
    pose_topic: str = ''
    keyframe_dist: float = 2.0         # metres travelled between bag keyframes
    keyframe_angle: float = 15.0       # or degrees turned
    pose_tolerance: float = 0.1        # s between an image and its pose (bags)
    dtype: str = 'float16'
    index: str = 'auto'
    batch_size: int = 16
    workers: int = 2                   # image decoding/preprocessing threads
    robot_id: str = ''
    session: str = ''
    input_size: Tuple[int, ...] = ()   # (h, w) override of the model's input size
    checkpoint_every: int = 256        # images between work-folder checkpoints
    vg_subsets: Tuple[str, ...] = ('database',)
    progress: bool = True
    executor: str = 'local'            # local | ray (workers = Ray actors)
    ray_address: str = 'auto'          # auto | local | HOST:PORT | ray://HOST:PORT
    map_frame: str = 'map'             # frame of the map; bag poses must be in it, or anchored
    anchor: Tuple[float, ...] = ()     # x y yaw (m, m, rad) of the bag pose frame in map_frame
    camera_extrinsics: str = 'tf_static'  # tf_static (camera mount from the bag) | none
    camera_mount: Tuple[float, ...] = ()  # x y yaw of the camera in base_link, by hand
    allow_random_weights: bool = False  # accept a model with untrained parts (tests only)
    local_features: bool = True        # store local features for geometric verification
