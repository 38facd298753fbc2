"""The asymmetric query networks shipped with vpr_ros and the gallery model each one serves.

A network is "recommended" when it keeps at least RECOMMEND_SHARE of its gallery's held-out
R@1 and degenerate frames (black, white, gray, noise: a lens cap must not become a pose prior)
are rejected, by its similarity floor or by its no-place gate (vpr_ros.no_place); only then
does ``model: auto`` pick it over the map's own model. Torch-free on purpose:
the matcher (which accepts a shipped query network's descriptors on its gallery's maps) and the
query_encoder's ``model: auto`` resolution run on robot installs without torch. The networks
are registered as models by vpr_ros.models.packaged.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

AUTO = 'auto'       # query_encoder model: the recommended shipped network of the map's gallery
MAP_MODEL = 'map'   # query_encoder model: the map's own model (symmetric search); '' too
RECOMMEND_SHARE = 0.85  # of the gallery's own held-out R@1, for 'auto' to pick a network


@dataclasses.dataclass(frozen=True)
class PackagedQuery:
    """A shipped query network: EfficientNet-Lite + GeM + projection into the descriptor space
    of the packaged gallery ``gallery`` (its maps are searched with it directly)."""

    name: str
    variant: int
    input_size: Tuple[int, int]
    gallery: str
    description: str
    # (unrelated, nearest) cosine levels of its descriptors against its gallery's maps,
    # measured on held-out towns: the matcher's similarity floor for it (the map's own levels
    # are those of the gallery model's space); () = no floor
    levels: Tuple[float, ...] = ()
    # picked by the query_encoder's model 'auto' only when it keeps >= RECOMMEND_SHARE of its
    # gallery's held-out R@1 and degenerate frames fall below its floor or are stopped by its
    # no-place gate (its card has the figures); any other is used when named
    recommended: bool = False
    # cosine to no-place prototypes at which the query_encoder drops a frame (vpr_ros.no_place),
    # set between the highest real frame and the lowest no-place frame measured (card); 0 = none
    no_place_threshold: float = 0.0

    @property
    def file(self) -> str:
        return f'{self.name}.safetensors'


QUERY_PACKAGED = {p.name: p for p in (
    PackagedQuery('efficientnet_lite0_query_vpr24', 0, (136, 184), 'efficientnet_lite2_vpr24',
                  'EfficientNet-Lite0 query network at 136x184 distilled (vpr-ros train asym, '
                  'from efficientnet_lite0_vpr) into the descriptor space of '
                  'efficientnet_lite2_vpr24 maps',
                  levels=(0.2135, 0.5486), recommended=True, no_place_threshold=0.80),
)}


def shipped_query_for(gallery: str, recommended_only: bool = False) -> Optional[PackagedQuery]:
    """The shipped query network trained for maps of ``gallery`` (None: there is none, or
    none recommended when ``recommended_only``)."""
    return next((q for q in QUERY_PACKAGED.values() if q.gallery == gallery
                 and (q.recommended or not recommended_only)), None)


def resolve_query_model(model: str, map_encoder: str) -> str:
    """The registered name a query_encoder ``model`` setting means for a map built by
    ``map_encoder``: 'auto' -> the recommended shipped query network of that gallery, else the
    map's own model; '' or 'map' -> the map's own model; any other name -> itself."""
    if model == AUTO:
        shipped = shipped_query_for(map_encoder, recommended_only=True)
        return shipped.name if shipped else map_encoder
    if model in ('', MAP_MODEL):
        return map_encoder
    return model


def no_place_threshold(query_network: str, setting: float = 0.0) -> float:
    """The no-place gate's threshold for ``query_network``: ``setting`` when positive; with 0,
    the one measured for a shipped network (0 = no gate: others were not measured); negative
    settings turn the gate off (0)."""
    if setting > 0:
        return float(setting)
    if setting < 0:
        return 0.0
    shipped = QUERY_PACKAGED.get(query_network)
    return shipped.no_place_threshold if shipped else 0.0


def accepted_query_networks(map_encoder: str) -> Tuple[str, ...]:
    """Query networks whose descriptors a matcher takes on a map of ``map_encoder``."""
    return tuple(q.name for q in QUERY_PACKAGED.values() if q.gallery == map_encoder)
