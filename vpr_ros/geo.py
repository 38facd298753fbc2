"""Geodesy: WGS84 lat/lon <-> UTM and a local metric map frame (REP 103: x east, y north)."""
from __future__ import annotations

import dataclasses

import numpy as np
import utm


@dataclasses.dataclass(frozen=True)
class MapOrigin:
    """UTM anchor of a map frame: map (x, y) = (utm_e - easting, utm_n - northing)."""

    easting: float
    northing: float
    zone_number: int
    zone_letter: str

    @classmethod
    def from_latlon(cls, lat: float, lon: float) -> 'MapOrigin':
        e, n, zn, zl = utm.from_latlon(float(lat), float(lon))
        return cls(float(e), float(n), int(zn), str(zl))

    def latlon_to_xy(self, lat, lon) -> np.ndarray:
        """(N,) lat/lon degrees -> (N,2) map-frame metres, forced into this origin's UTM zone."""
        lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        e, n, _, _ = utm.from_latlon(lat, lon, force_zone_number=self.zone_number,
                                     force_zone_letter=self.zone_letter)
        return np.stack([np.asarray(e) - self.easting, np.asarray(n) - self.northing], axis=-1)

    def xy_to_latlon(self, xy) -> np.ndarray:
        """(N,2) map-frame metres -> (N,2) lat/lon degrees."""
        xy = np.atleast_2d(np.asarray(xy, dtype=np.float64))
        lat, lon = utm.to_latlon(xy[:, 0] + self.easting, xy[:, 1] + self.northing,
                                 self.zone_number, self.zone_letter, strict=False)
        return np.stack([np.asarray(lat), np.asarray(lon)], axis=-1)

    def xy_to_utm(self, xy) -> np.ndarray:
        xy = np.atleast_2d(np.asarray(xy, dtype=np.float64))
        return xy + np.array([self.easting, self.northing])
