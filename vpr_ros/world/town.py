"""Procedural town layout from a seed: a jittered street grid with buildings, signs and trees.

Everything is in the map frame (REP 103: x east, y north, z up, metres). Different seeds give
different towns, so training and test places never overlap when they come from different seeds.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Tuple

import numpy as np

from vpr_ros.world.layout import Building, grid_shape, populate, Sign


@dataclasses.dataclass
class TownSettings:
    """Size and density of a procedural town."""

    blocks_x: int = 4          # street-grid cells east-west that routes may use
    blocks_y: int = 4          # street-grid cells south-north that routes may use
    border: int = 1            # extra built-up blocks around them, so views never end in void
    block_m: float = 70.0      # mean distance between intersections
    jitter_m: float = 9.0      # random shift of each intersection
    drop_edges: float = 0.15   # fraction of streets removed (staying connected): irregular graph
    road_half_m: float = 4.5   # half width of the carriageway
    sidewalk_m: float = 3.0
    tree_street_p: float = 0.35  # probability that a street is tree-lined
    sign_p: float = 0.45        # probability that a building carries a shop sign
    tower_p: float = 0.3        # probability that a block holds a landmark tower


@dataclasses.dataclass
class Town:
    """A procedural town: a street graph plus the things standing along the streets."""

    seed: int
    settings: TownSettings
    nodes: np.ndarray                   # (N, 2) intersections
    edges: List[Tuple[int, int]]
    routable: np.ndarray                # (N,) bool: intersections routes may visit (not border)
    buildings: List[Building]
    signs: List[Sign]
    trees: np.ndarray                   # (T, 5) x, y, height, crown radius, hue
    lamps: np.ndarray                   # (L, 3) x, y, height

    @classmethod
    def from_seed(cls, seed: int, settings: TownSettings = None) -> 'Town':
        """Build the town of ``seed`` (deterministic)."""
        s = settings or TownSettings()
        rng = np.random.default_rng([int(seed), 4242])
        nodes, edges, routable = _street_graph(s, rng)
        town = cls(int(seed), s, nodes, edges, routable, [], [], np.zeros((0, 5)),
                   np.zeros((0, 3)))
        populate(town, rng)
        return town

    def adjacency(self, routable_only: bool = False) -> Dict[int, List[int]]:
        """Node -> neighbouring nodes (only routable streets if ``routable_only``)."""
        adj: Dict[int, List[int]] = {i: [] for i in range(len(self.nodes))}
        for a, b in self.edges:
            if routable_only and not (self.routable[a] and self.routable[b]):
                continue
            adj[a].append(b)
            adj[b].append(a)
        return adj

    def street_length(self) -> float:
        """Total length of all streets (m)."""
        return float(sum(np.linalg.norm(self.nodes[a] - self.nodes[b]) for a, b in self.edges))

    def bounds(self) -> Tuple[np.ndarray, np.ndarray]:
        """(min xy, max xy) of the street graph."""
        return self.nodes.min(0), self.nodes.max(0)


def _connected(keep: np.ndarray, edges) -> bool:
    """Whether the nodes flagged in ``keep`` are connected by edges among themselves."""
    adj = {i: [] for i in range(len(keep))}
    for a, b in edges:
        if keep[a] and keep[b]:
            adj[a].append(b)
            adj[b].append(a)
    start = int(np.argmax(keep))
    seen, stack = {start}, [start]
    while stack:
        for j in adj[stack.pop()]:
            if j not in seen:
                seen.add(j)
                stack.append(j)
    return len(seen) == int(keep.sum())


def _street_graph(s: TownSettings, rng):
    nx, ny = grid_shape(s)
    gx, gy = np.meshgrid(np.arange(nx), np.arange(ny), indexing='xy')
    nodes = np.stack([gx.ravel(), gy.ravel()], 1) * s.block_m
    nodes = nodes + rng.uniform(-s.jitter_m, s.jitter_m, nodes.shape)
    nodes -= nodes.mean(0)
    idx = lambda i, j: j * nx + i  # noqa: E731
    edges = [(idx(i, j), idx(i + 1, j)) for j in range(ny) for i in range(nx - 1)]
    edges += [(idx(i, j), idx(i, j + 1)) for j in range(ny - 1) for i in range(nx)]
    gi, gj = gx.ravel(), gy.ravel()
    routable = ((gi >= s.border) & (gi <= nx - 1 - s.border) &
                (gj >= s.border) & (gj <= ny - 1 - s.border))
    everything = np.ones(len(nodes), bool)
    for k in rng.permutation(len(edges))[:int(s.drop_edges * len(edges))]:
        drop = (idx(0, 0), idx(0, 0)) if k >= len(edges) else edges[k]
        trial = [e for e in edges if e != drop]
        if _connected(everything, trial) and _connected(routable, trial):
            edges = trial
    return nodes, edges, routable
