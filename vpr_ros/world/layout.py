"""Placing buildings, signs, trees, lamps and landmark towers along a town's streets."""
from __future__ import annotations

import dataclasses
from typing import Tuple, TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from vpr_ros.world.town import Town, TownSettings  # annotations only: town imports this

PALETTE = np.array([  # plausible facade colours; hue variety keeps places distinctive
    [0.80, 0.70, 0.52], [0.72, 0.38, 0.28], [0.88, 0.82, 0.66], [0.50, 0.58, 0.68],
    [0.86, 0.60, 0.36], [0.58, 0.68, 0.50], [0.92, 0.88, 0.80], [0.58, 0.30, 0.26],
    [0.70, 0.74, 0.86], [0.90, 0.74, 0.42], [0.46, 0.48, 0.48], [0.76, 0.52, 0.60],
    [0.95, 0.90, 0.55], [0.42, 0.62, 0.62], [0.85, 0.55, 0.55], [0.62, 0.56, 0.78]])
SIGN_COLORS = np.array([
    [0.9, 0.1, 0.1], [0.1, 0.5, 0.95], [0.1, 0.75, 0.25], [0.98, 0.8, 0.05],
    [0.9, 0.4, 0.05], [0.6, 0.15, 0.8], [0.05, 0.8, 0.8], [0.95, 0.3, 0.6], [0.95, 0.95, 0.95]])


@dataclasses.dataclass
class Building:
    """An oriented box with a procedural facade (x, y = footprint centre)."""

    x: float
    y: float
    yaw: float      # local x along the street; local -y faces the street
    width: float    # along the street
    depth: float
    height: float
    color: Tuple[float, float, float]
    style: int      # 0 plaster, 1 brick, 2 bands, 3 glass, 4 landmark tower
    win_sx: float   # window column spacing (m)
    win_sy: float   # floor height (m)
    seed: float     # per-building random number in [0, 1) for the shader
    roof: int = 0   # 0 flat, 1 gable (ridge along the street)


@dataclasses.dataclass
class Sign:
    """A shop sign facing local -y of ``yaw``; shape 0 rect, 1 disc, 2 triangle, 3 diamond."""

    x: float
    y: float
    z: float
    yaw: float
    size: float
    color: Tuple[float, float, float]
    shape: int


def grid_shape(s: 'TownSettings') -> Tuple[int, int]:
    """Intersections east-west and south-north, border included."""
    return s.blocks_x + 2 * s.border + 1, s.blocks_y + 2 * s.border + 1


def populate(town: 'Town', rng) -> None:
    """Fill ``town`` (street graph already set) with everything that stands along it."""
    s = town.settings
    setback = s.road_half_m + s.sidewalk_m
    trees, lamps = [], []
    for a, b in town.edges:
        p, q = town.nodes[a], town.nodes[b]
        d = q - p
        length = float(np.linalg.norm(d))
        t = d / length
        n = np.array([-t[1], t[0]])
        yaw = float(np.arctan2(t[1], t[0]))
        tree_lined = rng.random() < s.tree_street_p
        for side in (1.0, -1.0):
            margin = setback + 2.0
            u = margin + rng.uniform(0, 4)
            while u < length - margin:
                w = rng.uniform(8, 20)
                if u + w > length - margin + 4:
                    break
                dep = rng.uniform(10, 18)
                front = setback + rng.uniform(0, 1.5)
                c = p + t * (u + w / 2) + n * side * (front + dep / 2)
                b_yaw = yaw if side > 0 else yaw + np.pi  # local -y faces the street
                style = int(rng.choice(4, p=[0.35, 0.3, 0.2, 0.15]))
                height = float(rng.uniform(7, 16) if style < 3 else rng.uniform(14, 34))
                col = PALETTE[rng.integers(len(PALETTE))] * rng.uniform(0.85, 1.1)
                town.buildings.append(Building(
                    float(c[0]), float(c[1]), float(b_yaw),
                    float(w), float(dep), height, tuple(np.clip(col, 0, 1)), style,
                    float(rng.uniform(2.4, 4.2)), float(rng.uniform(3.0, 3.8)),
                    float(rng.random()), int(style < 2 and rng.random() < 0.4)))
                if style >= 2 and rng.random() < 0.3:  # rooftop billboard, seen from afar
                    face = p + t * (u + w / 2) + n * side * (front + 0.6)
                    size = float(rng.uniform(1.8, 2.6))
                    town.signs.append(Sign(
                        float(face[0]), float(face[1]), height + size * 0.6 + 0.3, float(b_yaw),
                        size, tuple(SIGN_COLORS[rng.integers(len(SIGN_COLORS))]), 0))
                if rng.random() < s.sign_p:
                    face = p + t * (u + w * rng.uniform(0.3, 0.7)) + n * side * (front - 0.12)
                    town.signs.append(Sign(
                        float(face[0]), float(face[1]), float(rng.uniform(3.4, 5.5)),
                        float(b_yaw), float(rng.uniform(1.0, 2.4)),
                        tuple(SIGN_COLORS[rng.integers(len(SIGN_COLORS))]), int(rng.integers(4))))
                u += w + rng.uniform(0, 3.5)
            if tree_lined:
                for u in np.arange(setback + 6, length - setback - 6, rng.uniform(11, 17)):
                    c = p + t * u + n * side * (s.road_half_m + 1.2)
                    trees.append([c[0], c[1], rng.uniform(7, 11), rng.uniform(1.8, 2.8),
                                  rng.random()])
        for u in np.arange(setback + 4, length - setback, 24.0):
            side = 1.0 if int(u / 24.0) % 2 else -1.0
            c = p + t * u + n * side * (s.road_half_m + 0.5)
            lamps.append([c[0], c[1], 6.0])
    _towers(town, rng)
    town.trees = np.array(trees, dtype=np.float64).reshape(-1, 5)
    town.lamps = np.array(lamps, dtype=np.float64).reshape(-1, 3)


def _towers(town: 'Town', rng) -> None:
    """Landmarks at block centres: tall, coloured, visible over the roofs from far away."""
    s = town.settings
    nx, ny = grid_shape(s)
    for j in range(ny - 1):
        for i in range(nx - 1):
            if rng.random() >= s.tower_p:
                continue
            c = town.nodes[[j * nx + i, j * nx + i + 1, (j + 1) * nx + i, (j + 1) * nx + i + 1]]
            c = c.mean(0)
            col = SIGN_COLORS[rng.integers(len(SIGN_COLORS) - 1)] * 0.6 + 0.25
            town.buildings.append(Building(
                float(c[0]), float(c[1]), float(rng.uniform(0, np.pi)), float(rng.uniform(8, 14)),
                float(rng.uniform(8, 14)), float(rng.uniform(40, 75)), tuple(col), 4,
                float(rng.uniform(2.0, 3.0)), float(rng.uniform(4.0, 6.0)), float(rng.random())))
