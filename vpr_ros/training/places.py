"""Place ids for training: the data's own ids where it has them, a geo grid otherwise.

A *place* is a set of images of the same spot (any condition, any time). GSV-Cities ships
place ids; the VG layout and plain maps only have positions, so images are grouped by a
square metric grid (optionally split by heading, since opposite views of one spot share
nothing) or by greedy radius clustering.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np


def compact_ids(keys: Sequence) -> np.ndarray:
    """Arbitrary hashable keys -> contiguous int ids 0..P-1 in order of first appearance."""
    table = {}
    return np.array([table.setdefault(k, len(table)) for k in keys], dtype=np.int64)


def grid_place_ids(x, y, cell_m: float = 20.0, yaw=None, yaw_bins: int = 0,
                   origin=(0.0, 0.0)) -> np.ndarray:
    """Place ids from a square geo grid of ``cell_m`` metres (map frame or UTM metres).

    With ``yaw`` (radians) and ``yaw_bins`` > 0 each cell is also split into heading sectors
    (sector 0 is centred on yaw 0). Ids are contiguous, in order of first appearance.
    """
    if cell_m <= 0:
        raise ValueError(f'cell_m must be > 0, got {cell_m}')
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    cx = np.floor((x - origin[0]) / cell_m).astype(np.int64)
    cy = np.floor((y - origin[1]) / cell_m).astype(np.int64)
    if yaw is not None and yaw_bins > 0:
        width = 2 * math.pi / yaw_bins
        sector = np.floor(np.mod(np.asarray(yaw, np.float64) + width / 2, 2 * math.pi) / width)
        sector = sector.astype(np.int64) % yaw_bins
    else:
        sector = np.zeros_like(cx)
    return compact_ids(list(zip(cx.tolist(), cy.tolist(), sector.tolist())))


def cluster_place_ids(x, y, radius_m: float = 10.0) -> np.ndarray:
    """Greedy leader clustering: each image joins the first earlier leader within ``radius_m``."""
    xy = np.stack([np.asarray(x, np.float64), np.asarray(y, np.float64)], axis=1)
    leaders, ids = [], np.empty(len(xy), dtype=np.int64)
    for i, p in enumerate(xy):
        if leaders:
            d = np.linalg.norm(np.asarray(leaders) - p, axis=1)
            j = int(np.argmin(d))
            if d[j] <= radius_m:
                ids[i] = j
                continue
        leaders.append(p)
        ids[i] = len(leaders) - 1
    return ids


def assign_place_ids(x, y, place_ids: Optional[Sequence] = None, yaw=None,
                     method: str = 'grid', cell_m: float = 20.0, yaw_bins: int = 0,
                     radius_m: float = 10.0) -> np.ndarray:
    """Contiguous place ids: from ``place_ids`` when every row has one, else grid/cluster."""
    if place_ids is not None and len(place_ids) and all(
            p is not None and p != '' and not (isinstance(p, float) and math.isnan(p))
            for p in place_ids):
        return compact_ids(list(place_ids))
    if method == 'grid':
        return grid_place_ids(x, y, cell_m=cell_m, yaw=yaw, yaw_bins=yaw_bins)
    if method == 'cluster':
        return cluster_place_ids(x, y, radius_m=radius_m)
    raise ValueError(f'unknown place method {method!r} (grid | cluster)')


def place_subset(place_ids: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Boolean mask of the rows whose place is in a random ``fraction`` of the places."""
    uniq = np.unique(place_ids)
    n = max(1, int(round(len(uniq) * float(fraction))))
    keep = np.random.default_rng(seed).choice(uniq, size=n, replace=False)
    return np.isin(place_ids, keep)


@dataclasses.dataclass
class Rows:
    """Images with positions (metres: map frame or UTM), place ids and conditions."""

    paths: List[str]
    xy: np.ndarray                  # (N, 2): GSV map frame; MSLS/VG vpr_ros.geo.zoned_utm
    yaw: np.ndarray                 # (N,) radians CCW from east (NaN when unknown)
    places: np.ndarray              # (N,) contiguous place ids
    conditions: List[str]


def _read_gsv(root: Path) -> Rows:
    from vpr_ros.io.datasets import read_gsv_cities
    rows = read_gsv_cities(root)
    return Rows([r.path for r in rows], np.array([(r.x, r.y) for r in rows], np.float64),
                np.array([r.yaw for r in rows]), compact_ids([r.place_id for r in rows]),
                [r.condition for r in rows])


def _read_vg(root: Path, method: str = 'grid', cell_m: float = 20.0, yaw_bins: int = 0,
             radius_m: float = 10.0) -> Rows:
    from vpr_ros.geo import heading_to_yaw, zoned_utm
    from vpr_ros.io.vg import list_vg_folder
    recs = list_vg_folder(root)
    xy = zoned_utm([r.utm_e for r in recs], [r.utm_n for r in recs],
                   [r.zone_number if r.zone_letter else 0 for r in recs],
                   [r.zone_letter or 'N' for r in recs])
    yaw = heading_to_yaw([r.heading for r in recs])
    ids = assign_place_ids(xy[:, 0], xy[:, 1], None, yaw, method, cell_m, yaw_bins, radius_m)
    return Rows([r.path for r in recs], xy, yaw, ids, [r.note for r in recs])


def _read_msls(root: Path, method: str = 'grid', cell_m: float = 20.0, yaw_bins: int = 0,
               radius_m: float = 10.0, subsets=('database',)) -> Rows:
    from vpr_ros.geo import zoned_latlon
    from vpr_ros.io.msls import read_msls
    rows = read_msls(root, subsets=subsets)
    xy = zoned_latlon([r.lat for r in rows], [r.lon for r in rows])
    yaw = np.array([r.yaw for r in rows], dtype=np.float64)
    ids = assign_place_ids(xy[:, 0], xy[:, 1], None, yaw, method, cell_m, yaw_bins, radius_m)
    return Rows([r.path for r in rows], xy, yaw, ids, [r.condition for r in rows])


def concat_rows(parts: Sequence[Rows]) -> Rows:
    """Rows of several datasets as one; place ids stay apart (each dataset's are offset)."""
    offset, places = 0, []
    for r in parts:
        places.append(np.asarray(r.places) + offset)
        offset += int(np.max(r.places)) + 1 if len(r.places) else 0
    return Rows([p for r in parts for p in r.paths], np.concatenate([r.xy for r in parts]),
                np.concatenate([r.yaw for r in parts]), np.concatenate(places),
                [c for r in parts for c in r.conditions])


def read_rows(path, method: str = 'grid', cell_m: float = 20.0, yaw_bins: int = 0,
              radius_m: float = 10.0) -> Rows:
    """Rows of a GSV-Cities layout (place ids from its Dataframes), raw MSLS (a root,
    train_val/, a city or one database/query folder; all its database and query images when
    given a root or a city) or a VG-layout folder; MSLS and VG place ids come from a geo grid /
    clustering of their zoned UTM positions (vpr_ros.geo.zoned_utm: any number of zones, and
    a database and its queries read separately agree); condition = MSLS day/night or the VG
    note field. The layout is found by vpr_ros.io.datasets.detect_layout."""
    from vpr_ros.io.datasets import detect_layout
    root = Path(path)
    layout = detect_layout(root)
    if layout == 'gsv-cities':
        return _read_gsv(root)
    if layout == 'msls':
        return _read_msls(root, method, cell_m, yaw_bins, radius_m, ('database', 'query'))
    return _read_vg(root, method, cell_m, yaw_bins, radius_m)
