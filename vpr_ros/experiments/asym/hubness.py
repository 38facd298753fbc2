"""The map-side hubness correction (``vpr_ros.hubness``, CSLS) in the AsymVPR evaluation.

Each system searched with it gets a ``<tag>_csls`` row beside its plain one: its map entries
(and the growth distractors) carry ``bias(g)``, computed from the system's own query-side
descriptors of reference images. The reference images are the training images of a random
share of the training places (``hubness_places``); those places are kept out of the ``train``
growth distractors for every system, so no distractor is penalised for resembling a
reference image of its own place (which a deployed map of new places never is).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from vpr_ros.hubness import biased_map, hub_bias, with_bias

CSLS_SUFFIX = '_csls'
CSLS_SYSTEMS = ('gallery_symmetric', 'ours_asym', 'csd_asym', 'symmetric_student')


@dataclasses.dataclass
class HubnessReference:
    """Reference images for the correction and each system's query-side descriptors of them."""

    k: int
    paths: List[str]
    gallery: np.ndarray                      # the gallery's descriptors of ``paths``
    descs: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def of(self, tag: str, trained: Dict) -> np.ndarray:
        """The query side of ``tag`` on the reference images (encoded once per system)."""
        if tag not in self.descs:
            if tag == 'gallery_symmetric':
                self.descs[tag] = self.gallery
            else:
                from vpr_ros.experiments.asym.recall import encode_paths
                self.descs[tag] = encode_paths(trained[tag], self.paths)
        return self.descs[tag]

    def summary(self) -> Dict:
        return {'k': self.k, 'reference_images': len(self.paths)}


def split_reference(paths: Sequence[str], places: np.ndarray, gallery: np.ndarray, k: int,
                    fraction: float, seed: int = 0
                    ) -> Tuple[Optional[HubnessReference], np.ndarray]:
    """(reference or None when ``k`` is 0, bool mask of the training rows left for the
    ``train`` growth distractors)."""
    keep = np.ones(len(paths), bool)
    if k <= 0:
        return None, keep
    from vpr_ros.training.places import place_subset
    if not 0.0 < fraction < 1.0:
        raise ValueError(f'hubness_places must be a share of the training places in (0, 1), '
                         f'got {fraction}')
    ref = place_subset(np.asarray(places), fraction, seed)
    idx = np.flatnonzero(ref)   # a small training set may hold fewer than k: k shrinks to it
    return (HubnessReference(min(k, len(idx)), [paths[i] for i in idx],
                             np.asarray(gallery)[idx]), ~ref)


def add_csls_systems(systems: Dict[str, Dict], ref: Optional[HubnessReference],
                     trained: Dict) -> Dict[str, Dict]:
    """``systems`` plus ``<tag>_csls`` for each system of CSLS_SYSTEMS it holds."""
    if ref is None:
        return systems
    out = dict(systems)
    for tag in CSLS_SYSTEMS:
        if tag in systems:
            s = systems[tag]
            bias = hub_bias(s['db'], ref.of(tag, trained), ref.k)
            q, db = with_bias(s['query'], s['db'], bias)
            out[tag + CSLS_SUFFIX] = {'query': q, 'db': db}
    return out


def base_tag(tag: str) -> str:
    """``ours_asym_csls`` -> ``ours_asym``; other tags unchanged."""
    return tag[:-len(CSLS_SUFFIX)] if tag.endswith(CSLS_SUFFIX) else tag


def biased_distractors(tag: str, distractors: np.ndarray, ref: HubnessReference,
                       trained: Dict) -> np.ndarray:
    """Distractor descriptors of ``<base>_csls`` with their own biases appended."""
    base = base_tag(tag)
    bias = hub_bias(distractors, ref.of(base, trained), ref.k)
    return biased_map(distractors, bias)
