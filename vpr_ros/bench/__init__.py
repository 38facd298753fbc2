"""The real-time budget of the product (``vpr-ros bench``, vpr_ros/cli/bench.py), side by side.

(a) the shipped query network vs its gallery model (vpr_ros.bench.pair; DINOv2-B/14 BoQ as a
reference): batch-1 CPU latency, torch and onnxruntime, and their ratio; (b) the query_encoder
node's sustained rate, inference time and dropped frames at 30 Hz over DDS; (c) matcher top-k
latency and R@1 loss (compressed vs exact) on 10k / 100k / 1M synthetic places; (d) camera
frame -> pose prior latency with the three nodes; (e) RSS of each node, the matcher holding the
biggest map. Prints ONE markdown table with PASS/FAIL per floor and writes ``bench.json`` and
``bench.md`` to ``--out``.
"""
from __future__ import annotations

import dataclasses
from typing import List, Tuple


@dataclasses.dataclass
class BenchConfig:
    """Settings of ``vpr-ros bench`` (every field is a --flag)."""

    out: str = 'runs/bench'                         # bench.json, bench.md, node logs
    cache: str = 'runs/bench_cache'                 # synthetic maps and query networks, reused
    sections: List[str] = dataclasses.field(default_factory=lambda: ['models', 'matcher',
                                                                     'graph'])
    # (a) models
    # '' = the shipped pair (vpr_ros.bench.pair): the packaged trained query network and the
    # gallery it was trained against, else the packaged gallery model symmetric
    query_model: str = ''
    gallery_model: str = ''
    reference_models: List[str] = dataclasses.field(
        default_factory=lambda: ['dinov2_vitb14_boq'])
    input_size: int = 0                             # 0 = each model at its own input size
    threads: int = 1                                # same for every model (torch + ort)
    model_runs: int = 40
    dim: int = 1280                                 # descriptor width of the product's maps
    # (c) matcher
    map_sizes: List[int] = dataclasses.field(default_factory=lambda: [10_000, 100_000,
                                                                      1_000_000])
    matcher_dims: List[int] = dataclasses.field(default_factory=lambda: [1280])
    matcher_index: str = ''                         # '' = index.ivfpq_rerank_for(n, dim)
    nprobe: int = 0                                 # 0 = the index's default
    matcher_queries: int = 300
    exact_queries: int = 10
    top_k: int = 10
    # (b, d, e) graph over DDS
    node_backend: str = 'onnxruntime'
    node_threads: int = 1
    node_input_size: int = 0                        # 0 = the query network's own
    frame_size: Tuple[int, int] = (480, 640)        # camera frame height, width (JPEG)
    jpeg_quality: int = 90
    distinct_frames: int = 30
    rate_hz: float = 30.0
    warmup_s: float = 3.0
    duration_s: float = 30.0
    drain_s: float = 3.0
    startup_timeout_s: float = 300.0
    graph_map_places: int = 0                       # 0 = the largest of map_sizes
    # floors
    min_speedup: float = 10.0
    min_rate_hz: float = 30.0
    max_match_p99_ms: float = 5.0
    max_r1_loss_pts: float = 1.0
    max_e2e_p99_ms: float = 25.0                    # issue 35: the shipped pair, 30 Hz
    max_dropped_pct: float = 0.5
    max_rss_mb: float = 2048.0                      # matcher with the biggest map
    max_encoder_rss_mb: float = 250.0               # query_encoder (onnxruntime: no torch)
