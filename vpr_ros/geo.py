"""Geodesy: WGS84 lat/lon <-> UTM and a local metric map frame (REP 103: x east, y north).

A map frame is the UTM frame of its origin's zone, shifted to the origin. Points of the
neighbouring zones (one zone either side, either hemisphere) are projected into the origin's
zone, so a map that crosses a zone boundary stays one continuous metric frame. Points of far
zones (another city of a multi-city dataset, e.g. MSLS-val: Copenhagen 33U and San Francisco
10S) are kept in a local frame of their own zone: their own UTM easting/northing, shifted as a
whole into a free slot of the map frame (``MapOrigin.with_frames``, recorded in the map's
origin as ``zones``), beyond the near points along x. So within any zone, distances are the
UTM distances the VG benchmark protocol (gmberton/VPR-methods-evaluation) uses and recall
equals that protocol's, while every coordinate stays within the map's 1e7 m bound; two zones
never overlap. A far point of a zone without a slot (a query from a city the map lacks) gets
``ZONE_STRIDE_M`` per zone of x offset: far from everything, never a match.
"""
from __future__ import annotations

import dataclasses
from typing import Tuple

import numpy as np
import utm

NEAR_ZONES = 1          # zones this close to the origin's are projected into its zone
ZONE_STRIDE_M = 1.0e7   # x offset per zone of far points without a slot (never stored)
SLOT_MARGIN_M = 2.0e5   # free space around each far zone's slot
SLOT_LIMIT_M = 9.5e6    # slots stay within this (map positions are bounded by 1e7 m)
_SOUTH = 1.0e7          # UTM false northing of the southern hemisphere


def heading_to_yaw(heading_deg):
    """Compass heading (degrees clockwise from north; GSV northdeg, MSLS ca, VG heading) ->
    REP 103 yaw (radians counter-clockwise from east) in [-pi, pi); NaN stays NaN. The one
    place this conversion is made; scalars give a float, arrays an array."""
    rad = np.radians(90.0 - np.asarray(heading_deg, dtype=np.float64))
    yaw = np.mod(rad + np.pi, 2 * np.pi) - np.pi
    return float(yaw) if yaw.ndim == 0 else yaw


def zone_delta(zone_number, origin_zone: int) -> np.ndarray:
    """Signed zone difference in -30..29 (zones wrap around at 60)."""
    return (np.asarray(zone_number, dtype=np.int64) - int(origin_zone) + 30) % 60 - 30


def is_northern(zone_letter: str) -> bool:
    """Whether a UTM latitude band letter is in the northern hemisphere (N..X)."""
    return str(zone_letter or 'N').upper() >= 'N'


def latlon_zones(lat, lon) -> np.ndarray:
    """(N,) natural UTM zone number of each lat/lon (Norway and Svalbard exceptions included)."""
    return np.array([utm.latlon_to_zone_number(float(a), float(o)) for a, o in zip(lat, lon)],
                    dtype=np.int64)


def latlon_to_utm(lat, lon):
    """(e, n, zone, northern) arrays of finite lat/lon, each point in its natural zone."""
    lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    e, n = np.empty(len(lat)), np.empty(len(lat))
    zones = latlon_zones(lat, lon)
    north = lat >= 0
    for z in np.unique(zones):
        for hemi in (True, False):
            sel = (zones == z) & (north == hemi)
            if sel.any():
                e[sel], n[sel] = utm.from_latlon(lat[sel], lon[sel], force_zone_number=int(z),
                                                 force_northern=hemi)[:2]
    return e, n, zones, north


@dataclasses.dataclass(frozen=True)
class MapOrigin:
    """UTM anchor of a map frame: map (x, y) = (utm_e - easting, utm_n - northing) in its
    zone. ``zones``: the slots of far zones, each (zone, northern, anchor_e, anchor_n, x, y,
    half_width): UTM (anchor_e, anchor_n) of that zone is map (x, y)."""

    easting: float
    northing: float
    zone_number: int
    zone_letter: str
    zones: Tuple[tuple, ...] = ()

    def __post_init__(self):   # JSON gives lists
        object.__setattr__(self, 'zones', tuple(
            (int(z[0]), bool(z[1]), *(float(v) for v in z[2:7])) for z in self.zones))

    @classmethod
    def from_latlon(cls, lat: float, lon: float) -> 'MapOrigin':
        e, n, zn, zl = utm.from_latlon(float(lat), float(lon))
        return cls(float(e), float(n), int(zn), str(zl))

    def as_dict(self) -> dict:
        """The fields for a map manifest (``zones`` only when there are slots)."""
        d = {'easting': self.easting, 'northing': self.northing,
             'zone_number': self.zone_number, 'zone_letter': self.zone_letter}
        if self.zones:
            d['zones'] = [list(z) for z in self.zones]
        return d

    @property
    def _north(self) -> bool:
        return is_northern(self.zone_letter)

    def _forced(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        e, n, _, _ = utm.from_latlon(lat, lon, force_zone_number=self.zone_number,
                                     force_zone_letter=self.zone_letter or 'N')
        return np.stack([np.asarray(e) - self.easting, np.asarray(n) - self.northing], -1)

    def _is_near(self, zones) -> np.ndarray:
        return np.abs(zone_delta(zones, self.zone_number)) <= NEAR_ZONES

    def _far_xy(self, e, n, zone: int, north: bool) -> np.ndarray:
        for z, hemi, ae, an, x, y, _ in self.zones:
            if (z, hemi) == (zone, north):
                return np.stack([e - ae + x, n - an + y], -1)
        n0 = self.northing - (0.0 if self._north else _SOUTH)
        return np.stack([e - self.easting + int(zone_delta(zone, self.zone_number))
                         * ZONE_STRIDE_M, n - (0.0 if north else _SOUTH) - n0], -1)

    def _to_xy(self, e, n, zones, north) -> np.ndarray:
        out = np.empty((len(e), 2))
        same = (zones == self.zone_number) & (north == self._north)
        out[same] = np.stack([e[same] - self.easting, n[same] - self.northing], -1)
        for z in np.unique(zones[~same]):
            for hemi in (True, False):
                sel = ~same & (zones == z) & (north == hemi)
                if not sel.any():
                    continue
                if self._is_near(z):
                    lat, lon = utm.to_latlon(e[sel], n[sel], int(z), northern=hemi, strict=False)
                    out[sel] = self._forced(np.asarray(lat), np.asarray(lon))
                else:
                    out[sel] = self._far_xy(e[sel], n[sel], int(z), bool(hemi))
        return out

    def _zoned(self, easting, northing, zone_number, zone_letter):
        """(e, n, zone numbers, northern?) arrays of UTM points; zone 0 (unknown) and a missing
        letter mean the origin's zone and hemisphere."""
        e = np.atleast_1d(np.asarray(easting, dtype=np.float64))
        n = np.atleast_1d(np.asarray(northing, dtype=np.float64))
        zn = np.broadcast_to(np.asarray(zone_number, dtype=np.int64), e.shape).copy()
        zl = np.broadcast_to(np.asarray(zone_letter, dtype=object), e.shape)
        north = np.array([is_northern(b) if b and z else self._north for b, z in zip(zl, zn)],
                         dtype=bool)
        zn[zn == 0] = self.zone_number
        return e, n, zn, north

    def utm_to_xy(self, easting, northing, zone_number, zone_letter) -> np.ndarray:
        """(N,) UTM coordinates, each in its own zone -> (N,2) map-frame metres. A zone number
        of 0 means unknown: the point is taken to be in the origin's zone."""
        e, n, zn, north = self._zoned(easting, northing, zone_number, zone_letter)
        return self._to_xy(e, n, zn, north)

    def latlon_to_xy(self, lat, lon) -> np.ndarray:
        """(N,) lat/lon degrees -> (N,2) map-frame metres (any zones; NaN where unknown)."""
        lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        out = np.full((len(lat), 2), np.nan)
        ok = np.isfinite(lat) & np.isfinite(lon)
        zones = np.zeros(len(lat), dtype=np.int64)
        zones[ok] = latlon_zones(lat[ok], lon[ok])
        near = ok & self._is_near(zones)
        if near.any():
            out[near] = self._forced(lat[near], lon[near])
        far = ok & ~near
        if far.any():
            e, n, z, north = latlon_to_utm(lat[far], lon[far])
            out[far] = self._to_xy(e, n, z, north)
        return out

    def xy_to_latlon(self, xy) -> np.ndarray:
        """(N,2) map-frame metres -> (N,2) lat/lon degrees (inverse of latlon_to_xy)."""
        xy = np.atleast_2d(np.asarray(xy, dtype=np.float64))
        out = np.full((len(xy), 2), np.nan)
        todo = np.ones(len(xy), dtype=bool)
        stride = np.round(xy[:, 0] / ZONE_STRIDE_M).astype(np.int64)
        n0 = self.northing - (0.0 if self._north else _SOUTH)
        for d in np.unique(stride[stride != 0]):   # far points without a slot
            n_eq = xy[:, 1] + n0
            for hemi in (True, False):
                sel = (stride == d) & ((n_eq >= 0) == hemi)
                if sel.any():
                    zone = (self.zone_number - 1 + int(d)) % 60 + 1
                    e = xy[sel, 0] - d * ZONE_STRIDE_M + self.easting
                    self._put(out, sel, e, n_eq[sel] + (0.0 if hemi else _SOUTH), zone, hemi)
            todo &= stride == 0
        for z, hemi, ae, an, x, y, hw in self.zones:
            sel = todo & (np.abs(xy[:, 0] - x) <= hw)
            if sel.any():
                self._put(out, sel, xy[sel, 0] - x + ae, xy[sel, 1] - y + an, z, hemi)
                todo &= ~sel
        if todo.any():
            self._put(out, todo, xy[todo, 0] + self.easting, xy[todo, 1] + self.northing,
                      self.zone_number, self._north)
        return out

    @staticmethod
    def _put(out, sel, e, n, zone: int, north: bool) -> None:
        lat, lon = utm.to_latlon(e, n, int(zone), northern=bool(north), strict=False)
        out[sel] = np.stack([np.asarray(lat), np.asarray(lon)], -1)

    def xy_to_utm(self, xy) -> np.ndarray:
        """(N,2) map-frame metres -> UTM easting/northing in the origin's zone."""
        xy = np.atleast_2d(np.asarray(xy, dtype=np.float64))
        return xy + np.array([self.easting, self.northing])

    def with_frames(self, easting, northing, zone_number, zone_letter) -> 'MapOrigin':
        """This origin plus a slot for every far zone among these UTM points (zone 0: the
        origin's), laid out beyond the near points along +x, then -x; ValueError when they do
        not fit within the map's bounds (build one map per region then)."""
        e, n, zn, north = self._zoned(easting, northing, zone_number, zone_letter)
        known = {(z[0], z[1]) for z in self.zones}
        far = ~self._is_near(zn)
        groups = sorted({(int(z), bool(h)) for z, h in zip(zn[far], north[far])} - known)
        if not groups:
            return self
        taken = self._to_xy(e[~far], n[~far], zn[~far], north[~far])[:, 0].tolist() + [0.0]
        for z in self.zones:
            taken += [z[4] - z[6], z[4] + z[6]]
        right, left = max(taken) + SLOT_MARGIN_M, min(taken) - SLOT_MARGIN_M
        slots = list(self.zones)
        for z, hemi in groups:
            sel = far & (zn == z) & (north == hemi)
            ae, an = float(np.median(e[sel])), float(np.median(n[sel]))
            hw = float(np.abs(e[sel] - ae).max()) + SLOT_MARGIN_M
            if right + 2 * hw <= SLOT_LIMIT_M:
                x, right = right + hw, right + 2 * hw
            elif left - 2 * hw >= -SLOT_LIMIT_M:
                x, left = left - hw, left - 2 * hw
            else:
                raise ValueError(f'{len(groups)} far UTM zones do not fit in one map frame '
                                 f'(within {SLOT_LIMIT_M:.0f} m); build one map per region')
            slots.append((z, hemi, ae, an, x, 0.0, hw))
        return dataclasses.replace(self, zones=tuple(slots))

    def with_frames_latlon(self, lat, lon) -> 'MapOrigin':
        """with_frames for the far zones among WGS84 points (non-finite ones ignored)."""
        lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        ok = np.isfinite(lat) & np.isfinite(lon)
        if not ok.any():
            return self
        e, n, z, north = latlon_to_utm(lat[ok], lon[ok])
        return self.with_frames(e, n, z, np.where(north, 'N', 'M'))


def zoned_utm(easting, northing, zone_number, zone_letter='N') -> np.ndarray:
    """(N,2) absolute metres that need no origin (training rows, not maps): UTM easting +
    ``ZONE_STRIDE_M`` x zone number (0 = unknown: raw easting), northing counted from the
    equator. Within a zone, distances are the VG protocol's UTM distances; zones never
    overlap; two separate reads of the same data (a database and its queries) agree."""
    e = np.atleast_1d(np.asarray(easting, dtype=np.float64))
    n = np.atleast_1d(np.asarray(northing, dtype=np.float64))
    zn = np.broadcast_to(np.asarray(zone_number, dtype=np.int64), e.shape)
    zl = np.broadcast_to(np.asarray(zone_letter, dtype=object), e.shape)
    south = np.array([not is_northern(z) for z in zl], dtype=bool)
    return np.stack([e + ZONE_STRIDE_M * zn, n - _SOUTH * south], axis=-1)


def zoned_latlon(lat, lon) -> np.ndarray:
    """zoned_utm of WGS84 lat/lon (each point in its natural zone); NaN where unknown."""
    lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    out = np.full((len(lat), 2), np.nan)
    ok = np.isfinite(lat) & np.isfinite(lon)
    if ok.any():
        e, n, z, north = latlon_to_utm(lat[ok], lon[ok])
        out[ok] = zoned_utm(e, n, z, np.where(north, 'N', 'M'))
    return out
