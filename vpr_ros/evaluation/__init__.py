"""``vpr-ros evaluate``: replay a bag or a VG queries folder through the localization pipeline.

Offline (default) runs the nodes' core functions in this process; ``--live`` runs the real nodes
over DDS. Both produce one ``FrameResult`` per query frame, from which ``metrics`` computes
Recall@N, pose-prior errors, precision-recall of the confidence and latencies, and ``report``
writes report.json, report.md and the plots. No module here imports rclpy.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Tuple

import numpy as np


@dataclasses.dataclass
class EvalConfig:
    """Settings of ``vpr-ros evaluate`` (one CLI flag per field, dashes for underscores)."""

    map: str = ''                      # map directory (vpr-ros build-map)
    bag: str = ''                      # rosbag1/rosbag2 (sqlite3 or MCAP) with images + poses
    vg: str = ''                       # or a VG-layout queries folder (ground truth in names)
    model: str = 'auto'                # query model, as the query_encoder's (auto | map | name)
    checkpoint: str = ''               # trained query network (overrides model)
    backend: str = 'torch'             # torch | onnxruntime
    threads: int = 0                   # encoder threads; 0 = library default
    input_size: Tuple[int, ...] = ()   # (h, w) override of the model's input size
    params_file: str = ''              # node YAML for the matcher settings ('' = localize.yaml)
    image_topic: str = ''              # '' = automatic
    pose_topic: str = ''               # '' = automatic (NavSatFix for geo maps, else odometry)
    pose_tolerance: float = 0.1        # s between an image and its ground-truth pose
    threshold_m: float = 25.0          # a retrieval is correct within this distance
    yaw_threshold_deg: Optional[float] = None  # and (optionally) this heading difference
    max_frames: int = 0                # 0 = all
    out: str = 'eval'                  # report folder
    live: bool = False                 # run the three nodes over DDS instead of in-process
    rate: float = 0.0                  # live replay rate in Hz; 0 = the bag's own rate
    bench: bool = False                # run offline and live, print frames/s side by side
    plots: bool = True
    condition: str = ''                # label of frames without one ('' = the bag's name)
    outside_map_m: float = 50.0        # warn when the median query-to-map distance is larger
    strict: bool = False               # exit non-zero when the ground truth is unusable
    fit_calibration: str = ''          # fit the matcher's confidence calibration: JSON out
    calibration_method: str = 'platt_sim'  # its method (localization.calibration.METHODS)


@dataclasses.dataclass
class FrameResult:
    """What the pipeline answered for one query frame (positions in the map frame)."""

    index: int
    stamp: float                               # seconds (bag stamp; VG: frame index)
    name: str = ''                             # VG file name or bag stamp
    condition: str = ''
    gt: Optional[Tuple[float, float]] = None   # ground-truth x, y (None: no pose)
    gt_yaw: Optional[float] = None             # radians, None if unknown
    ids: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))
    scores: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    cand_xy: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 2)))
    cand_yaw: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    prior: Optional[Tuple[float, float, float]] = None  # x, y, yaw of the pose prior
    confidence: float = float('nan')
    localized: bool = False
    answered: bool = False                     # False: dropped (no match came back)
    latency_ms: Dict[str, float] = dataclasses.field(default_factory=dict)
    raw_confidence: float = float('nan')       # before calibration (NaN: live, unknown)
    similarity: float = float('nan')           # top-1 relative to the map's levels
    recognised: bool = True                    # False: below the map's similarity floor


@dataclasses.dataclass
class EvalRun:
    """The frames of one evaluation plus what is needed to describe it."""

    mode: str                                  # offline | live
    frames: List[FrameResult]
    wall_s: float                              # processing time of the frames (no loading)
    info: Dict = dataclasses.field(default_factory=dict)      # model, map, input, topics...
    warnings: List[str] = dataclasses.field(default_factory=list)
