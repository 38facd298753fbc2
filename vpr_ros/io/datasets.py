"""Dataset readers behind one dispatcher: ``read_dataset(path, layout='auto')``.

One module per layout returns ``PlaceRow`` lists (vpr_ros.io.place_rows): GSV-Cities
(vpr_ros.io.gsv_cities), raw MSLS (vpr_ros.io.msls) and VG-layout folders (here, names parsed
by vpr_ros.io.vg). Map building (vpr_ros.mapstore.sources.DatasetSource), training
(vpr_ros.training.places) and distillation read through it; ``PlaceDataset`` wraps rows for
torch. VG places come from the ``p<id>`` pano field that vpr_ros.world writes, else from a
UTM grid of ``cell_m`` metres.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from vpr_ros.geo import heading_to_yaw, MapOrigin
from vpr_ros.imaging import read_image_file
from vpr_ros.io.gsv_cities import read_gsv_cities  # noqa: F401 - part of this module's API
from vpr_ros.io.msls import msls_subsets, read_msls
from vpr_ros.io.place_rows import origin_near, PlaceRow, PlaceRows  # noqa: F401
from vpr_ros.io.vg import list_vg_folder, vg_origin, vg_xy

LAYOUTS = ('auto', 'gsv-cities', 'msls', 'vg')


def detect_layout(path) -> str:
    """'gsv-cities' (Dataframes/), 'msls' (postprocessed.csv / raw.csv folders) or 'vg'."""
    root = Path(path)
    if (root / 'Dataframes').is_dir():
        return 'gsv-cities'
    try:
        msls_subsets(root, subsets=('database', 'query'))
        return 'msls'
    except (FileNotFoundError, OSError):
        return 'vg'


def read_dataset(path, layout: str = 'auto', origin: Optional[MapOrigin] = None,
                 subsets: Sequence[str] = ('database',), cell_m: float = 25.0,
                 cities: Optional[Sequence[str]] = None) -> PlaceRows:
    """Rows of a dataset folder in the frame of ``origin`` (default: the reader's own, at its
    first image, with slots for far UTM zones; the result's ``origin``). ``subsets`` (MSLS:
    database/query; VG: database/queries sub-folders when present) and ``cities``
    (GSV-Cities, MSLS) select parts; ``cell_m``: grid places."""
    layout = detect_layout(path) if layout == 'auto' else layout
    if layout == 'gsv-cities':
        return read_gsv_cities(path, cities, origin)
    if layout == 'msls':
        return read_msls(path, cities, subsets, origin, cell_m)
    if layout != 'vg':
        raise ValueError(f'unknown dataset layout {layout!r} (one of {", ".join(LAYOUTS)})')
    root = Path(path)
    dirs = [root / s for s in subsets if (root / s).is_dir()] or [root]
    if origin is None:
        origin = vg_origin([r for d in dirs for r in list_vg_folder(d)], origin_near(root))
    rows = PlaceRows(origin=origin)
    for d in dirs:
        rows += read_vg(d, cell_m, origin)
    return rows


def read_vg(folder, cell_m: float = 25.0, origin: Optional[MapOrigin] = None,
            use_pano_places: bool = True) -> PlaceRows:
    """Rows of a VG-layout folder (e.g. ``out/test/database``; recursive, sorted by path).

    Place ids: from ``p<id>`` pano fields when every image has one (and ``use_pano_places``),
    else the UTM grid cell of ``cell_m`` metres per zone, renumbered 0..P-1 in order of
    appearance. x/y: each name's UTM in the frame of ``origin`` (default: world.json, else
    the first image, with slots for far zones; the result's ``origin``), any number of zones.
    """
    folder = Path(folder)
    recs = list_vg_folder(folder)
    origin = origin or vg_origin(recs, origin_near(folder))
    xy = vg_xy(recs, origin)
    pano = use_pano_places and all(r.pano_id[:1] == 'p' and r.pano_id[1:].isdigit()
                                   for r in recs)
    ids: Dict[tuple, int] = {}
    rows = PlaceRows(origin=origin)
    for r, (x, y) in zip(recs, xy.tolist()):
        key = (int(r.pano_id[1:]),) if pano else (r.zone_number, math.floor(r.utm_e / cell_m),
                                                  math.floor(r.utm_n / cell_m))
        pid = ids.setdefault(key, len(ids))
        rows.append(PlaceRow(r.path, pid, x, y, heading_to_yaw(r.heading), r.lat, r.lon, r.note))
    return rows


def rows_by_place(rows: Sequence[PlaceRow]) -> Dict[int, List[int]]:
    """place id -> indices of its rows (for per-place batch samplers)."""
    out: Dict[int, List[int]] = {}
    for i, r in enumerate(rows):
        out.setdefault(r.place_id, []).append(i)
    return out


def _torch_dataset_base():
    try:
        from torch.utils.data import Dataset
        return Dataset
    except ImportError:  # readers stay usable without torch
        return object


class PlaceDataset(_torch_dataset_base()):
    """torch Dataset of PlaceRows: item = (image, place_id, index).

    The image is uint8 RGB (H, W, 3) as numpy, or ``transform(image)`` when a transform is given.
    """

    def __init__(self, rows: Sequence[PlaceRow], transform: Optional[Callable] = None):
        self.rows = list(rows)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        img = read_image_file(self.rows[index].path)
        if self.transform is not None:
            img = self.transform(img)
        return img, self.rows[index].place_id, index

    def positions(self) -> np.ndarray:
        """(N, 2) map-frame x, y of all rows."""
        return np.array([[r.x, r.y] for r in self.rows], dtype=np.float64).reshape(-1, 2)

    def place_ids(self) -> np.ndarray:
        """(N,) place id of every row."""
        return np.array([r.place_id for r in self.rows], dtype=np.int64)
