"""Triangle meshes of a Town: interleaved float32 vertices for the GLSL shaders.

Vertex layout (16 floats): position xyz, normal xyz, colour rgb, uv (metres on facades and
roads, 0..1 on signs), material id, 4 material parameters. Material ids match scene.frag.
"""
from __future__ import annotations

import numpy as np

from vpr_ros.world.town import Town

FLOATS_PER_VERTEX = 16
GROUND, ROAD, FACADE, ROOF, SIGN, FOLIAGE, POLE, LAMP, OCCLUDER = range(9)


class MeshBuilder:
    """Accumulates triangles in the interleaved vertex layout."""

    def __init__(self):
        self._chunks = []

    def quad(self, corners, normal, color, uvs, mat, prm=(0, 0, 0, 0)):
        """Two triangles from four corners (counter-clockwise seen from the normal side)."""
        v = np.zeros((4, FLOATS_PER_VERTEX), np.float32)
        v[:, 0:3] = corners
        v[:, 3:6] = normal
        v[:, 6:9] = color
        v[:, 9:11] = uvs
        v[:, 11] = mat
        v[:, 12:16] = prm
        self._chunks.append(v[[0, 1, 2, 0, 2, 3]])

    def triangles(self, pos, nrm, color, mat, prm=(0, 0, 0, 0), uvs=(0, 0)):
        """Raw triangles: pos/nrm (3k, 3), optional uvs (3k, 2)."""
        v = np.zeros((len(pos), FLOATS_PER_VERTEX), np.float32)
        v[:, 0:3] = pos
        v[:, 3:6] = nrm
        v[:, 6:9] = color
        v[:, 9:11] = uvs
        v[:, 11] = mat
        v[:, 12:16] = prm
        self._chunks.append(v)

    def box(self, cx, cy, z0, w, d, h, yaw, color, side_mat, top_mat, prm=(0, 0, 0, 0)):
        """An oriented box; side faces get uv = (metres along the face, height above ground)."""
        c, s = np.cos(yaw), np.sin(yaw)
        ax, ay = np.array([c, s]), np.array([-s, c])
        ctr = np.array([cx, cy])
        hw, hd = w / 2, d / 2
        ring = [ctr - ax * hw - ay * hd, ctr + ax * hw - ay * hd,
                ctr + ax * hw + ay * hd, ctr - ax * hw + ay * hd]
        for k in range(4):
            a, b = ring[k], ring[(k + 1) % 4]
            e = b - a
            length = float(np.hypot(*e))
            nrm = (e[1] / length, -e[0] / length, 0.0)
            corners = [(*a, z0), (*b, z0), (*b, z0 + h), (*a, z0 + h)]
            uvs = [(0, z0), (length, z0), (length, z0 + h), (0, z0 + h)]
            self.quad(corners, nrm, color, uvs, side_mat, prm)
        top = [(*p, z0 + h) for p in ring]
        self.quad(top, (0, 0, 1), color, [(0, 0), (w, 0), (w, d), (0, d)], top_mat, prm)

    def array(self) -> np.ndarray:
        """All vertices as one (V, 16) float32 array."""
        if not self._chunks:
            return np.zeros((0, FLOATS_PER_VERTEX), np.float32)
        return np.concatenate(self._chunks).astype(np.float32)


def _icosphere() -> np.ndarray:
    t = (1 + 5 ** 0.5) / 2
    v = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
                  [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], float)
    f = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
         [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
         [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]]
    tri = v[np.array(f)].reshape(-1, 3)
    a, b, c = tri[0::3], tri[1::3], tri[2::3]  # one subdivision
    ab, bc, ca = (a + b) / 2, (b + c) / 2, (c + a) / 2
    sub = np.stack([a, ab, ca, ab, b, bc, ca, bc, c, ab, bc, ca], 1).reshape(-1, 3)
    return sub / np.linalg.norm(sub, axis=1, keepdims=True)


_SPHERE = _icosphere()


def _tree(mb: MeshBuilder, x, y, height, radius, hue, rng):
    mb.box(x, y, 0.0, 0.35, 0.35, height - radius, 0.0, (0.35, 0.25, 0.18), POLE, POLE)
    pts = _SPHERE * radius * rng.uniform(0.8, 1.2, (len(_SPHERE), 1))
    pts = pts * np.array([1.0, 1.0, 1.2]) + np.array([x, y, height - radius * 1.1])
    col = np.array([0.20 + 0.15 * hue, 0.38 + 0.1 * (1 - hue), 0.12])
    mb.triangles(pts, _SPHERE, col, FOLIAGE, (hue, 0, 0, 0))  # radial normals: soft crowns


ROOF_TILES = np.array([[0.95, 0.4, 0.28], [0.55, 0.55, 0.6], [0.8, 0.55, 0.35]])  # x0.45 in GLSL


def _gable(mb: MeshBuilder, b, prm) -> None:
    """A pitched roof on a box: ridge along the building's local x (the street)."""
    c, s = np.cos(b.yaw), np.sin(b.yaw)
    ax, ay = np.array([c, s, 0.0]), np.array([-s, c, 0.0])
    base = np.array([b.x, b.y, b.height])
    hw, hd, rise = b.width / 2, b.depth / 2, b.depth * 0.3
    col = ROOF_TILES[int(b.seed * 997) % len(ROOF_TILES)]
    ridge = [base - ax * hw + [0, 0, rise], base + ax * hw + [0, 0, rise]]
    for side in (-1.0, 1.0):
        eave = [base - ax * hw + ay * hd * side, base + ax * hw + ay * hd * side]
        nrm = ay * side * rise + np.array([0, 0, hd])
        nrm /= np.linalg.norm(nrm)
        mb.quad([eave[0], eave[1], ridge[1], ridge[0]], nrm, col,
                [(0, 0), (b.width, 0), (b.width, hd), (0, hd)], ROOF, prm)
    for end in (-1.0, 1.0):  # gable walls carry the facade
        tri = np.stack([base + ax * hw * end - ay * hd, base + ax * hw * end + ay * hd,
                        ridge[int(end > 0)]])
        mb.triangles(tri, ax * end, b.color, FACADE, prm,
                     np.array([[0, b.height], [b.depth, b.height], [hd, b.height + rise]]))


_ANGLES = np.linspace(0, 2 * np.pi, 17)[:-1]
SIGN_OUTLINES = {  # in sign coordinates [-1, 1]^2, counter-clockwise; the shape is geometry so
    0: np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float),  # the shader needs no discard
    1: np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], 1),
    2: np.array([[-1, -1], [1, -1], [0, 1]], float),
    3: np.array([[0, -1], [1, 0], [0, 1], [-1, 0]], float)}


def _sign(mb: MeshBuilder, sg) -> None:
    c, s = np.cos(sg.yaw), np.sin(sg.yaw)
    ax, nrm = np.array([c, s]), np.array([s, -c])  # nrm: local -y, towards the street
    ctr = np.array([sg.x, sg.y]) + nrm * 0.02
    hw, hh = sg.size * (1.4 if sg.shape == 0 else 0.6), sg.size * 0.6
    ring = SIGN_OUTLINES[sg.shape]
    fan = np.concatenate([[[0.0, 0.0], ring[k], ring[(k + 1) % len(ring)]]
                          for k in range(len(ring))])
    # seen from the street, the sign's +x runs along +ax
    pos = np.column_stack([ctr[0] + ax[0] * hw * fan[:, 0], ctr[1] + ax[1] * hw * fan[:, 0],
                           sg.z + hh * fan[:, 1]])
    mb.triangles(pos, (*nrm, 0), sg.color, SIGN,
                 (sg.shape, (sg.x * 0.37 + sg.y * 0.11) % 1.0, hw / hh, 0), (fan + 1) / 2)


def town_mesh(town: Town) -> np.ndarray:
    """The static geometry of a town (ground, roads, buildings, signs, trees, lamps)."""
    mb = MeshBuilder()
    rng = np.random.default_rng([town.seed, 77])
    s = town.settings
    lo, hi = town.bounds()
    lo, hi = lo - 400.0, hi + 400.0
    mb.quad([(lo[0], lo[1], 0), (hi[0], lo[1], 0), (hi[0], hi[1], 0), (lo[0], hi[1], 0)],
            (0, 0, 1), (0.55, 0.54, 0.52), [(lo[0], lo[1]), (hi[0], lo[1]), hi, (lo[0], hi[1])],
            GROUND)
    for a, b in town.edges:
        p, q = town.nodes[a], town.nodes[b]
        t = (q - p) / np.linalg.norm(q - p)
        n = np.array([-t[1], t[0]])
        length = float(np.linalg.norm(q - p))
        for half, z, mat in ((s.road_half_m + s.sidewalk_m, 0.02, GROUND),
                             (s.road_half_m, 0.04, ROAD)):
            p0, q0 = p - t * half, q + t * half
            corners = [(*(p0 - n * half), z), (*(q0 - n * half), z),
                       (*(q0 + n * half), z), (*(p0 + n * half), z)]
            uvs = [(-half, -half), (length + half, -half), (length + half, half), (-half, half)]
            mb.quad(corners, (0, 0, 1), (0.5, 0.5, 0.5), uvs, mat, (length, half, 0, 0))
    for b in town.buildings:
        prm = (b.seed, b.win_sx, b.win_sy, b.style * 100 + min(b.height, 99.0))
        mb.box(b.x, b.y, 0.0, b.width, b.depth, b.height, b.yaw, b.color, FACADE, ROOF, prm)
        if b.roof == 1:
            _gable(mb, b, prm)
        if b.style == 4:  # spire
            c = np.array([b.x, b.y])
            r = 0.5 * min(b.width, b.depth)
            ang = b.yaw + np.pi / 4 + np.arange(4) * np.pi / 2
            ring = c + r * np.stack([np.cos(ang), np.sin(ang)], 1)
            apex = np.array([b.x, b.y, b.height + 2.5 * r])
            for k in range(4):
                a3 = np.array([*ring[k], b.height])
                b3 = np.array([*ring[(k + 1) % 4], b.height])
                nrm = np.cross(b3 - a3, apex - a3)
                nrm /= np.linalg.norm(nrm)
                mb.triangles(np.stack([a3, b3, apex]), np.tile(nrm, (3, 1)),
                             np.array(b.color) * 0.6, ROOF, prm)
    for sg in town.signs:
        _sign(mb, sg)
    for x, y, h, r, hue in town.trees:
        _tree(mb, x, y, h, r, hue, rng)
    for x, y, h in town.lamps:
        mb.box(x, y, 0.0, 0.18, 0.18, h, 0.0, (0.2, 0.2, 0.22), POLE, POLE)
        mb.box(x, y, h, 0.6, 0.6, 0.25, 0.0, (0.9, 0.85, 0.7), LAMP, LAMP)
    return mb.array()


def occluder_mesh(boxes) -> np.ndarray:
    """Moving occluders from rows (x, y, yaw, length, width, height, r, g, b, kind).

    kind 0 is a car (body plus cabin), 1 a pedestrian.
    """
    mb = MeshBuilder()
    for x, y, yaw, ln, wd, ht, r, g, b, kind in boxes:
        if kind == 0:
            mb.box(x, y, 0.25, ln, wd, ht * 0.5, yaw, (r, g, b), OCCLUDER, OCCLUDER, (0, 0, 0, 0))
            mb.box(x, y, 0.25 + ht * 0.5, ln * 0.55, wd * 0.9, ht * 0.45, yaw, (r, g, b),
                   OCCLUDER, OCCLUDER, (1, 0, 0, 0))
        else:
            mb.box(x, y, 0.0, ln, wd, ht, yaw, (r, g, b), OCCLUDER, OCCLUDER, (2, 0, 0, 0))
    return mb.array()
