"""How hard a world is: Recall@1 of a naive thumbnail matcher, per query condition.

A benchmark is useful when this baseline does well on the database condition (places are
distinctive) and poorly across conditions (appearance change needs learned features).
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import cv2
import numpy as np

from vpr_ros.evaluation.metrics import search_correct
from vpr_ros.world.conditions import DATABASE_VIEW, QUERY_VIEW
from vpr_ros.world.generate import town_for
from vpr_ros.world.render import Renderer
from vpr_ros.world.routes import plan_route


def thumbnail(rgb: np.ndarray, size: Tuple[int, int] = (16, 12)) -> np.ndarray:
    """Grey, area-downsampled, zero-mean, unit-norm vector."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    v = cv2.resize(grey, size, interpolation=cv2.INTER_AREA).ravel()
    v -= v.mean()
    return v / (np.linalg.norm(v) + 1e-6)


def thumbnail_recall(seed: int = 0, places: int = 40, spacing_m: float = 10.0,
                     conditions: Sequence[str] = ('day', 'dusk', 'night', 'rain'),
                     size: Tuple[int, int] = (160, 120), threshold_m: float = 25.0,
                     supersample: int = 1) -> Dict[str, float]:
    """R@1 per query condition against a database in ``conditions[0]`` (database viewpoints).

    Queries use the shifted query viewpoints. The key 'chance' is the expected R@1 of a random
    guess (share of database places within ``threshold_m``, averaged over queries).
    """
    town = town_for(places, spacing_m, seed)
    route = plan_route(town, places, spacing_m, seed=seed)
    db_poses = route.poses(DATABASE_VIEW)
    db_xy = np.array([[p.x, p.y] for p in db_poses])
    out: Dict[str, float] = {}
    with Renderer(town, size, supersample) as r:
        db = np.stack([thumbnail(r.render(p, conditions[0], noise_seed=i))
                       for i, p in enumerate(db_poses)])
        for k, cond in enumerate(conditions):
            q_poses = route.poses(QUERY_VIEW, seed=seed + 101 + k)
            q = np.stack([thumbnail(r.render(p, cond, noise_seed=10**6 + i))
                          for i, p in enumerate(q_poses)])
            q_xy = np.array([[p.x, p.y] for p in q_poses])
            out[cond] = float(search_correct(q, db, q_xy, db_xy, threshold_m, 1).mean())
            if 'chance' not in out:
                near = np.linalg.norm(q_xy[:, None] - db_xy[None], axis=2) <= threshold_m
                out['chance'] = float(near.mean())
    return out
