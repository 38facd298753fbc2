"""A generated GSV-Cities tree (``Dataframes/<City>.csv`` + ``Images/<City>/*.jpg``) of small,
valid JPEG textures, for the streaming-training benchmark and tests: the real layout and file
names (vpr_ros.io.gsv_cities), N images of P places in a few cities, nothing downloaded."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence, Tuple

import cv2
import numpy as np

from vpr_ros.io.gsv_cities import COLUMNS, gsv_image_name

CITIES = (('Boston', 42.36, -71.06), ('London', 51.51, -0.13), ('Melbourne', -37.81, 144.96),
          ('Osaka', 34.69, 135.50))


def texture(rng: np.random.Generator, size: Tuple[int, int] = (48, 64)) -> np.ndarray:
    """A random smooth BGR texture of ``size`` = (h, w) (a 12x16 noise field upscaled)."""
    small = rng.integers(0, 256, (max(1, size[0] // 4), max(1, size[1] // 4), 3), np.uint8)
    return cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def generate_gsv_tree(root, num_images: int, per_place: int = 4,
                      cities: Sequence[tuple] = CITIES, size: Tuple[int, int] = (48, 64),
                      seed: int = 0, quality: int = 75) -> Path:
    """Write ``num_images`` JPEGs (``per_place`` per place, places spread over ``cities``)
    under ``root`` in the GSV-Cities layout; returns ``root``. Existing files are kept."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    places = -(-num_images // per_place)
    n_city = min(len(cities), places)
    written = 0
    for c, (city, lat0, lon0) in enumerate(cities[:n_city]):
        (root / 'Images' / city).mkdir(parents=True, exist_ok=True)
        (root / 'Dataframes').mkdir(parents=True, exist_ok=True)
        first, last = c * places // n_city, (c + 1) * places // n_city
        with open(root / 'Dataframes' / f'{city}.csv', 'w', newline='') as f:
            w = csv.DictWriter(f, fieldnames=list(COLUMNS))
            w.writeheader()
            for pid in range(first, last):
                lat = round(lat0 + 0.0005 * (pid - first), 6)   # ~55 m between places
                for k in range(per_place):
                    if written >= num_images:
                        break
                    row = {'place_id': pid, 'year': 2015 + k % 5, 'month': 1 + k % 12,
                           'northdeg': (90 * k) % 360, 'city_id': city, 'lat': str(lat),
                           'lon': str(lon0), 'panoid': f'p{pid:07d}k{k}'}
                    w.writerow(row)
                    path = root / 'Images' / city / gsv_image_name(
                        {key: str(v) for key, v in row.items()})
                    if not path.is_file():
                        ok, buf = cv2.imencode('.jpg', texture(rng, size),
                                               [cv2.IMWRITE_JPEG_QUALITY, quality])
                        path.write_bytes(buf.tobytes())
                    written += 1
    return root
