"""Appearance conditions (time of day, weather) and viewpoint changes between traversals."""
from __future__ import annotations

import dataclasses
from typing import Dict, Tuple

Color = Tuple[float, float, float]


@dataclasses.dataclass(frozen=True)
class Condition:
    """Everything the shaders and the post-processing need to know about light and weather."""

    name: str
    sun_elev_deg: float = 45.0
    sun_azim_deg: float = 135.0       # compass degrees, clockwise from north
    sun_color: Color = (1.0, 0.95, 0.85)
    sun_strength: float = 1.0
    sky_zenith: Color = (0.25, 0.45, 0.80)
    sky_horizon: Color = (0.70, 0.80, 0.92)
    ambient: float = 0.45
    fog_density: float = 0.004        # per metre (exponential)
    cloud_cover: float = 0.3
    night: float = 0.0                # 0 day .. 1 night: lit windows, lamps, glowing signs
    wet: float = 0.0                  # wet ground: darker, mirror-like
    rain: float = 0.0                 # rain streak density
    exposure: float = 1.0
    noise: float = 2.0                # sensor noise sigma (8-bit levels)
    saturation: float = 1.0


CONDITIONS: Dict[str, Condition] = {c.name: c for c in [
    Condition('day'),
    Condition('overcast', sun_strength=0.25, sky_zenith=(0.55, 0.58, 0.62),
              sky_horizon=(0.75, 0.76, 0.78), ambient=0.75, cloud_cover=0.95, fog_density=0.006,
              saturation=0.8),
    Condition('dusk', sun_elev_deg=4.0, sun_azim_deg=255.0, sun_color=(1.0, 0.55, 0.3),
              sun_strength=0.9, sky_zenith=(0.22, 0.22, 0.42), sky_horizon=(0.95, 0.55, 0.35),
              ambient=0.3, fog_density=0.008, cloud_cover=0.5, night=0.45, exposure=1.1,
              noise=3.0),
    Condition('fog', sun_strength=0.15, sky_zenith=(0.72, 0.74, 0.76),
              sky_horizon=(0.80, 0.81, 0.82), ambient=0.8, fog_density=0.035, cloud_cover=1.0,
              saturation=0.7, noise=2.5),
    Condition('night', sun_elev_deg=-20.0, sun_strength=0.0, sky_zenith=(0.01, 0.015, 0.04),
              sky_horizon=(0.05, 0.06, 0.10), ambient=0.06, fog_density=0.006, cloud_cover=0.2,
              night=1.0, exposure=1.3, noise=5.0),
    Condition('rain', sun_strength=0.1, sky_zenith=(0.32, 0.34, 0.38),
              sky_horizon=(0.48, 0.50, 0.53), ambient=0.55, fog_density=0.015, cloud_cover=1.0,
              night=0.25, wet=1.0, rain=1.0, exposure=0.9, noise=4.0, saturation=0.75),
]}


def get_condition(name: str) -> Condition:
    """The preset called ``name``; ValueError lists the known ones."""
    try:
        return CONDITIONS[name]
    except KeyError:
        raise ValueError(f'unknown condition {name!r}; known: {", ".join(CONDITIONS)}') from None


@dataclasses.dataclass(frozen=True)
class Viewpoint:
    """Random viewpoint change of a traversal relative to the database (uniform +-)."""

    lateral_m: float = 0.0
    along_m: float = 0.0
    yaw_deg: float = 0.0
    height_m: float = 0.0
    pitch_deg: float = 0.0


DATABASE_VIEW = Viewpoint()
QUERY_VIEW = Viewpoint(lateral_m=1.5, along_m=2.0, yaw_deg=10.0, height_m=0.4, pitch_deg=3.0)
