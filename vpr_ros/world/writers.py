"""Image folders in the VG benchmark layout and the GSV-Cities training layout."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Tuple

import cv2
import numpy as np

from vpr_ros.geo import MapOrigin
from vpr_ros.io.vg import VGRecord, format_vg_name
from vpr_ros.world.camera import CameraPose

GSV_COLUMNS = ['place_id', 'year', 'month', 'northdeg', 'city_id', 'lat', 'lon', 'panoid']
# Extra columns after the GSV-Cities ones; GSV-Cities loaders ignore them.
GSV_EXTRA = ['condition', 'x', 'y', 'yaw']
# A capture date per condition, so that year/month vary across a place's images as in GSV-Cities.
CONDITION_DATES: Dict[str, Tuple[int, int]] = {
    'day': (2019, 6), 'overcast': (2020, 3), 'dusk': (2020, 10), 'fog': (2021, 11),
    'night': (2022, 1), 'rain': (2022, 4)}


def save_jpeg(path: Path, rgb: np.ndarray, quality: int = 90) -> None:
    """Write an RGB uint8 image as JPEG (parent folders are created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                       [cv2.IMWRITE_JPEG_QUALITY, int(quality)]):
        raise OSError(f'could not write {path}')


class VGWriter:
    """``out/<split>/database`` and ``out/<split>/queries`` with VG names.

    pano_id holds the place id (``p00042``), note the condition, timestamp the frame order.
    """

    def __init__(self, out, split: str, origin: MapOrigin, quality: int = 90):
        self.root = Path(out) / split
        self.origin, self.quality = origin, quality
        self.paths: Dict[str, List[Path]] = {'database': [], 'queries': []}

    def write(self, folder: str, rgb: np.ndarray, pose: CameraPose, place_id: int,
              condition: str, order: int) -> Path:
        """Save one image into ``database`` or ``queries``; returns its path."""
        e, n = self.origin.xy_to_utm([[pose.x, pose.y]])[0]
        lat, lon = self.origin.xy_to_latlon([[pose.x, pose.y]])[0]
        rec = VGRecord('', float(e), float(n), self.origin.zone_number, self.origin.zone_letter,
                       float(lat), float(lon), f'p{place_id:05d}', pose.heading_deg,
                       f'{order:06d}', condition)
        path = self.root / folder / format_vg_name(rec)
        save_jpeg(path, rgb, self.quality)
        self.paths[folder].append(path)
        return path

    def write_camera(self, fovy_deg: float, size, pitch_deg: float = 0.0) -> Path:
        """``camera.json`` (vpr_ros.io.camera_file): the intrinsics of every image here."""
        from vpr_ros.io.camera_file import pinhole_from_fov, write_camera_file
        cam = dict(pinhole_from_fov(fovy_deg, int(size[0]), int(size[1])), pitch_deg=pitch_deg)
        return write_camera_file(self.root, cam)


def gsv_name(city: str, place_id: int, year: int, month: int, northdeg: int, lat: float,
             lon: float, panoid: str) -> str:
    """The GSV-Cities image name (the one its loader rebuilds from a Dataframes row)."""
    return (f'{city}_{place_id:07d}_{year:04d}_{month:02d}_{northdeg:03d}_'
            f'{lat}_{lon}_{panoid}.jpg')


class GSVWriter:
    """``out/Images/<City>/*.jpg`` plus ``out/Dataframes/<City>.csv``."""

    def __init__(self, out, city: str, origin: MapOrigin, quality: int = 90):
        self.out, self.city, self.origin, self.quality = Path(out), city, origin, quality
        self.rows: List[list] = []
        self.paths: List[Path] = []

    def write(self, rgb: np.ndarray, pose: CameraPose, place_id: int, condition: str,
              shot: int) -> Path:
        """Save one image of place ``place_id``; ``shot`` numbers the place's images."""
        lat, lon = (round(float(v), 7) for v in self.origin.xy_to_latlon([[pose.x, pose.y]])[0])
        year, month = CONDITION_DATES.get(condition, (2023, 1))
        northdeg = int(round(pose.heading_deg)) % 360
        panoid = f'{condition}{shot:02d}'
        path = self.out / 'Images' / self.city / gsv_name(self.city, place_id, year, month,
                                                          northdeg, lat, lon, panoid)
        save_jpeg(path, rgb, self.quality)
        self.rows.append([place_id, year, month, northdeg, self.city, lat, lon, panoid,
                          condition, round(pose.x, 3), round(pose.y, 3), round(pose.yaw, 5)])
        self.paths.append(path)
        return path

    def close(self) -> Path:
        """Write the Dataframes CSV; returns its path."""
        path = self.out / 'Dataframes' / f'{self.city}.csv'
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, 'w', newline='') as f:
            w = csv.writer(f)
            w.writerow(GSV_COLUMNS + GSV_EXTRA)
            w.writerows(self.rows)
        return path
