"""Moving occluders: cars on the carriageway and pedestrians on the sidewalks, per frame."""
from __future__ import annotations

import numpy as np

from vpr_ros.world.camera import CameraPose
from vpr_ros.world.town import Town

CAR_COLORS = np.array([[0.8, 0.8, 0.82], [0.1, 0.1, 0.12], [0.6, 0.05, 0.05], [0.1, 0.2, 0.5],
                       [0.45, 0.47, 0.5], [0.9, 0.9, 0.9], [0.2, 0.35, 0.2], [0.85, 0.6, 0.1]])


def random_occluders(town: Town, pose: CameraPose, rng: np.random.Generator,
                     cars: float = 3.0, people: float = 4.0, radius_m: float = 45.0) -> np.ndarray:
    """Rows (x, y, yaw, length, width, height, r, g, b, kind) near ``pose``.

    Counts are Poisson with the given means; nothing is placed within 7 m of the camera so that
    the view is occluded, not blanked.
    """
    s = town.settings
    eye = np.array([pose.x, pose.y])
    rows = []
    segs = []
    for a, b in town.edges:
        p, q = town.nodes[a], town.nodes[b]
        t = q - p
        u = np.clip(np.dot(eye - p, t) / np.dot(t, t), 0, 1)
        if np.linalg.norm(p + u * t - eye) < radius_m:
            segs.append((p, q))
    if not segs:
        return np.zeros((0, 10))
    for kind, mean in ((0, cars), (1, people)):
        for _ in range(rng.poisson(mean)):
            p, q = segs[rng.integers(len(segs))]
            t = (q - p) / np.linalg.norm(q - p)
            n = np.array([-t[1], t[0]])
            along = rng.uniform(0, np.linalg.norm(q - p))
            if kind == 0:
                lat = rng.choice([-1.0, 1.0]) * rng.uniform(1.6, 2.4)
                col = CAR_COLORS[rng.integers(len(CAR_COLORS))]
                size = (rng.uniform(3.8, 4.8), rng.uniform(1.7, 1.95), rng.uniform(1.4, 1.7))
            else:
                lat = rng.choice([-1.0, 1.0]) * rng.uniform(s.road_half_m + 0.5,
                                                            s.road_half_m + s.sidewalk_m - 0.3)
                col = rng.uniform(0.1, 0.8, 3)
                size = (0.45, 0.35, rng.uniform(1.55, 1.9))
            c = p + t * along + n * lat
            if np.linalg.norm(c - eye) < 7.0:
                continue
            yaw = np.arctan2(t[1], t[0]) + (np.pi if lat > 0 and kind == 0 else 0.0)
            rows.append([c[0], c[1], yaw, *size, *col, kind])
    return np.array(rows, np.float64).reshape(-1, 10)
