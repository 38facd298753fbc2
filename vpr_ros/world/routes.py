"""Routes through a town's streets: places every N metres, traversals with viewpoint changes.

Poses follow REP 103 in the map frame: x east, y north, yaw CCW from +x. The camera drives in
the right-hand lane and looks along the street (sometimes slightly sideways).
"""
from __future__ import annotations

import dataclasses
import math
from typing import List, Optional

import numpy as np

from vpr_ros.world.camera import CameraPose
from vpr_ros.world.conditions import Viewpoint
from vpr_ros.world.town import Town


@dataclasses.dataclass
class Route:
    """A polyline along streets and the places sampled on it."""

    polyline: np.ndarray        # (M, 2) the right-hand lane through the intersections visited
    s: np.ndarray               # (N,) arc length of each place along the polyline
    side_look: np.ndarray       # (N,) yaw offset of each place's database view (rad)
    height_m: float = 2.0
    pitch_deg: float = 4.0      # camera tilted up a little: more facade, less asphalt

    @property
    def length(self) -> float:
        """Polyline length (m)."""
        return float(np.sum(np.linalg.norm(np.diff(self.polyline, axis=0), axis=1)))

    def point(self, s: float, lateral: float = 0.0):
        """(x, y, yaw) at arc length ``s`` (clamped), ``lateral`` metres left of the lane."""
        seg = np.linalg.norm(np.diff(self.polyline, axis=0), axis=1)
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        s = float(np.clip(s, 0.0, cum[-1] - 1e-6))
        k = int(np.searchsorted(cum, s, side='right') - 1)
        k = min(k, len(seg) - 1)
        t = (self.polyline[k + 1] - self.polyline[k]) / seg[k]
        p = self.polyline[k] + t * (s - cum[k]) + np.array([-t[1], t[0]]) * lateral
        return float(p[0]), float(p[1]), float(math.atan2(t[1], t[0]))

    def place_pose(self, i: int, view: Viewpoint = Viewpoint(),
                   rng: Optional[np.random.Generator] = None) -> CameraPose:
        """The pose of place ``i``, shifted at random within ``view`` (uniform +-)."""
        u = (lambda a: float(rng.uniform(-a, a))) if rng is not None else (lambda a: 0.0)
        x, y, yaw = self.point(self.s[i] + u(view.along_m), u(view.lateral_m))
        return CameraPose(x, y, self.height_m + u(view.height_m),
                          yaw + self.side_look[i] + math.radians(u(view.yaw_deg)),
                          math.radians(self.pitch_deg + u(view.pitch_deg)))

    def poses(self, view: Viewpoint = Viewpoint(), seed: int = 0) -> List[CameraPose]:
        """One pose per place (a traversal)."""
        rng = np.random.default_rng([seed, 11]) if view != Viewpoint() else None
        return [self.place_pose(i, view, rng) for i in range(len(self.s))]


def lane_polyline(centre: np.ndarray, lane_m: float) -> np.ndarray:
    """Offset a centre-line polyline ``lane_m`` to the right, with mitred corners."""
    d = np.diff(centre, axis=0)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    right = np.stack([d[:, 1], -d[:, 0]], axis=1)
    normals = np.concatenate([right[:1], right[:-1] + right[1:], right[-1:]])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    seg_normal = np.concatenate([right[:1], right])  # a segment normal at every vertex
    cos_half = np.clip(np.sum(normals * seg_normal, axis=1), 0.5, 1.0)
    return centre + normals * (lane_m / cos_half)[:, None]


def _walk(town: Town, start: int, rng) -> List[int]:
    """A random walk that never reuses a street and never turns back."""
    adj = town.adjacency(routable_only=True)
    path, used = [start], set()
    while True:
        options = [j for j in adj[path[-1]] if frozenset((path[-1], j)) not in used]
        if not options:
            return path
        j = options[rng.integers(len(options))]
        used.add(frozenset((path[-1], j)))
        path.append(j)


def plan_route(town: Town, places: int, spacing_m: float = 10.0, seed: int = 0,
               side_look_p: float = 0.25, side_look_deg: float = 25.0,
               lane_m: float = 1.8, height_m: float = 2.0) -> Route:
    """``places`` places every ``spacing_m`` along a street walk (ValueError if the town is small).

    The walk starts at a random intersection, never reuses a street and never turns back, so
    places do not repeat; the longest of up to 60 walks is kept if none is long enough.
    """
    rng = np.random.default_rng([town.seed, seed, 5])
    need = (places + 1) * spacing_m
    best = (None, 0.0)
    for _ in range(60):
        path = _walk(town, int(rng.choice(np.flatnonzero(town.routable))), rng)
        if len(path) < 2:
            continue
        lane = lane_polyline(town.nodes[path], lane_m)
        length = float(np.sum(np.linalg.norm(np.diff(lane, axis=0), axis=1)))
        if length > best[1]:
            best = (lane, length)
        if length >= need:
            break
    lane, length = best
    if length < need:
        raise ValueError(f'town {town.seed} is too small for {places} places every {spacing_m} m '
                         f'(longest street walk {length:.0f} m, need {need:.0f} m)')
    s = spacing_m + np.arange(places) * spacing_m
    sideways = rng.choice([-1.0, 1.0], places) * np.radians(rng.uniform(10, side_look_deg, places))
    look = np.where(rng.random(places) < side_look_p, sideways, 0.0)
    return Route(lane, s, look, height_m)


def drive(route: Route, step_m: float, view: Viewpoint = Viewpoint(), seed: int = 0,
          kidnap: bool = False) -> List[CameraPose]:
    """A continuous traversal every ``step_m`` metres with smooth viewpoint drift.

    With ``kidnap`` the sequence jumps once, halfway, to the part of the second half that lies
    farthest from the jump point, and drives on from there (a kidnapped-robot test).
    """
    rng = np.random.default_rng([seed, 23])
    s = np.arange(route.s[0], route.s[-1] + 1e-6, step_m)
    if kidnap and len(s) >= 8:
        half = len(s) // 2
        here = np.array(route.point(s[half - 1])[:2])
        cands = np.arange(half + 1, len(s) - 2)
        far = [np.linalg.norm(np.array(route.point(s[k])[:2]) - here) for k in cands]
        s = np.concatenate([s[:half], s[cands[int(np.argmax(far))]:]])
    phase = rng.uniform(0, 2 * np.pi, 3)
    poses = []
    for v in s:
        wave = np.sin(2 * np.pi * v / np.array([60.0, 45.0, 90.0]) + phase)
        x, y, yaw = route.point(v, view.lateral_m * wave[0])
        poses.append(CameraPose(x, y, route.height_m + view.height_m * wave[2],
                                yaw + math.radians(view.yaw_deg * 0.5 * wave[1]),
                                math.radians(route.pitch_deg)))
    return poses
