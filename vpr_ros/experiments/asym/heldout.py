"""Held-out evaluation of the systems of an AsymVPR run: recall pooled and per town, and
recall as the map grows by distractors.

`vpr-ros train asym` calls it after training, `vpr-ros evaluate-asym` on the checkpoints of a
finished run (other towns, other distractors), so both reports are computed the same way.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from vpr_ros.evaluation.paired import nearest_place, paired_against
from vpr_ros.experiments.asym import recall as ev
from vpr_ros.experiments.asym.hubness import (
    CSLS_SUFFIX, HubnessReference, add_csls_systems, base_tag, biased_distractors)

GalleryFeatures = Callable[[Sequence[str]], np.ndarray]  # image paths -> gallery descriptors
GROWTH_SYSTEMS = ('gallery_symmetric', 'ours_asym', 'csd_asym', 'symmetric_student')


@dataclasses.dataclass
class Distractors:
    """Images added to every held-out database; they are never a true match."""

    paths: List[str]
    source: str                             # what they are, for the report
    gallery: Optional[np.ndarray] = None    # their gallery descriptors when already known


def cached_features_fn(gallery, cache: str, cfg) -> GalleryFeatures:
    """Gallery descriptors of image paths through the feature cache, with the gallery model,
    weights, backend and threads of ``cfg`` (an AsymTrainConfig)."""
    from vpr_ros.training.gallery_cache import cached_gallery_features

    def features(paths: Sequence[str]) -> np.ndarray:
        return cached_gallery_features(gallery, list(paths), cache, cfg.gallery_model,
                                       cfg.gallery_checkpoint, progress=cfg.progress,
                                       backend=cfg.gallery_backend, threads=cfg.threads,
                                       executor=cfg.gallery_executor,
                                       workers=cfg.gallery_workers)[0]
    return features


def read_distractors(spec: str, train_paths: Sequence[str] = (),
                     train_gallery: Optional[np.ndarray] = None) -> Optional[Distractors]:
    """Distractors from ``spec``: '' none; 'train' the training images (with their cached
    gallery features); otherwise comma-separated folders: a VG split (``database/`` and
    ``queries/``: both are used), a VG folder or a GSV-Cities dataset."""
    from vpr_ros.training.places import read_rows
    spec = spec.strip()
    if not spec:
        return None
    if spec == 'train':
        if not len(train_paths):
            raise ValueError("growth distractors 'train' need the run's training images")
        return Distractors(list(train_paths), f'the {len(train_paths)} training images',
                           train_gallery)
    paths, names = [], []
    for folder in [Path(f.strip()) for f in spec.split(',') if f.strip()]:
        if not folder.is_dir():
            raise FileNotFoundError(f'distractor folder {str(folder)!r} does not exist')
        if (folder / 'database').is_dir() and (folder / 'queries').is_dir():
            sp = ev.read_split(folder)
            paths += sp.db_paths + sp.q_paths
        else:
            paths += read_rows(folder).paths
        names.append(folder.parent.name if folder.name in ('test', 'val') else folder.name)
    if not paths:
        raise ValueError(f'no images in the distractor folders {spec!r}')
    return Distractors(paths, f'{len(paths)} images of {", ".join(names)}')


def is_symmetric(tag: str) -> bool:
    """Whether the run ``tag`` is a query network trained alone (``symmetric_*``)."""
    return tag.startswith('symmetric_')


def split_systems(gallery_features: GalleryFeatures, trained: Dict, untrained,
                  split: ev.Split) -> Dict[str, Dict]:
    """{system: {'query': descs, 'db': descs}} of one held-out split; a symmetric student
    encodes its own database, every other system is searched against the gallery's."""
    gdb, gq = gallery_features(split.db_paths), gallery_features(split.q_paths)
    systems = {'gallery_symmetric': {'query': gq, 'db': gdb}}
    if untrained is not None:
        systems['untrained_asym'] = {'query': ev.encode_paths(untrained, split.q_paths),
                                     'db': gdb}
    for tag, model in trained.items():
        q = ev.encode_paths(model, split.q_paths)
        db = ev.encode_paths(model, split.db_paths) if is_symmetric(tag) else gdb
        systems[tag] = {'query': q, 'db': db}
    return systems


def _growth(per_split, splits, trained, gallery_features, distractors: Distractors,
            fractions, radius_m, seed, hubness=None) -> Dict[str, List[Dict]]:
    """Pooled R@1 of each growth system as its databases gain ``distractors``: gallery
    descriptors of them for the gallery's systems, the student's own for the student (with
    their hubness biases for the ``_csls`` systems)."""
    gal = distractors.gallery
    if gal is None:
        gal = gallery_features(distractors.paths)
    out, own = {}, {}
    for tag in GROWTH_SYSTEMS + tuple(t + CSLS_SUFFIX for t in GROWTH_SYSTEMS):
        if tag not in per_split[0]:
            continue
        base = base_tag(tag)
        if is_symmetric(base) and base not in own:
            own[base] = ev.encode_paths(trained[base], distractors.paths)
        d = own[base] if is_symmetric(base) else gal
        if tag != base:
            d = biased_distractors(tag, d, hubness, trained)
        out[tag] = ev.pool_growth([
            ev.db_growth(s[tag]['query'], s[tag]['db'], sp, d, fractions, radius_m, seed)
            for s, sp in zip(per_split, splits)])
    return out


def evaluate_heldout(folders: Sequence[str], gallery_features: GalleryFeatures, trained: Dict,
                     untrained=None, radius_m: float = 25.0,
                     distractors: Optional[Distractors] = None,
                     fractions: Sequence[float] = (0.0, 0.1, 0.3, 1.0), seed: int = 0,
                     hubness: Optional[HubnessReference] = None,
                     seen: Sequence[str] = ()) -> dict:
    """Report entries ``recall`` (pooled: each query against its own split's DB),
    ``recall_by_split`` (several splits), ``eval``, ``paired_r1`` (ours against every other
    system on the same queries; ``paired_r1_csls`` the same for ours with the hubness
    correction) and, with distractors, ``db_growth``. With ``seen`` (the training conditions)
    also ``by_seen``: R@1 and the paired rows on the queries of seen vs unseen conditions."""
    splits = [ev.read_split(f) for f in folders]
    per_split = [add_csls_systems(split_systems(gallery_features, trained, untrained, sp),
                                  hubness, trained) for sp in splits]
    hits = ev.split_hits(per_split, splits, radius_m)
    conds = [c for sp in splits for c in sp.q_conditions]
    out = {'recall': {k: ev.summarize(np.concatenate(h), conds) for k, h in hits.items()},
           'eval': {'split': ','.join(map(str, folders)), 'splits': len(splits),
                    'db_images': sum(len(sp.db_paths) for sp in splits),
                    'queries': sum(len(sp.q_paths) for sp in splits), 'radius_m': radius_m}}
    out['compatibility'] = compatibility(per_split)
    places, offset = [], 0  # each query's place: its nearest DB image, apart per split
    for sp in splits:
        places.append(offset + nearest_place(sp.q_xy, sp.db_xy))
        offset += len(sp.db_xy)
    top1 = {k: np.concatenate(h)[:, 0] for k, h in hits.items()}
    out['paired_r1'] = paired_against(top1, 'ours_asym', seed=seed,
                                      groups=np.concatenate(places))
    if seen:
        out['by_seen'] = seen_unseen(top1, conds, seen, np.concatenate(places), seed)
    if hubness is not None:
        out['hubness'] = hubness.summary()
        out['paired_r1_csls'] = paired_against(top1, 'ours_asym' + CSLS_SUFFIX, seed=seed,
                                               groups=np.concatenate(places))
    if len(splits) > 1:
        out['recall_by_split'] = {str(f): {k: ev.summarize(h[i], sp.q_conditions)
                                           for k, h in hits.items()}
                                  for i, (f, sp) in enumerate(zip(folders, splits))}
    if distractors is not None:
        out['db_growth'] = _growth(per_split, splits, trained, gallery_features, distractors,
                                   fractions, radius_m, seed, hubness)
        out['db_growth_source'] = distractors.source
    return out


def seen_unseen(top1: Dict[str, np.ndarray], conds: Sequence[str], seen: Sequence[str],
                places: np.ndarray, seed: int = 0, ref: str = 'ours_asym') -> dict:
    """{'seen' | 'unseen': {'conditions', 'queries', 'R@1' {system: %}, 'paired' (``ref``
    against every other system, place-resampled)}} of the queries whose condition was / was
    not among the training conditions ``seen``."""
    is_seen = np.isin(np.asarray(conds), list(seen))
    out = {}
    for name, mask in (('seen', is_seen), ('unseen', ~is_seen)):
        if not mask.any():
            continue
        out[name] = {'conditions': sorted(set(np.asarray(conds)[mask].tolist())),
                     'queries': int(mask.sum()),
                     'R@1': {k: float(100 * h[mask].mean()) for k, h in top1.items()},
                     'paired': paired_against({k: h[mask] for k, h in top1.items()}, ref,
                                              seed=seed, groups=places[mask])}
    return out


def compatibility(per_split: Sequence[Dict[str, Dict]]) -> Dict[str, float]:
    """Mean cosine of each compatible system's query descriptors to the gallery's descriptors
    of the same query images (1 would be the gallery model itself): how far the map model's
    space is reproduced, beyond the ranking recall measures."""
    out = {}
    for tag in per_split[0]:
        if tag == 'gallery_symmetric' or is_symmetric(tag) or tag.endswith(CSLS_SUFFIX):
            continue
        cos = [_unit(s[tag]['query']) * _unit(s['gallery_symmetric']['query'])
               for s in per_split]
        out[tag] = float(np.concatenate(cos).sum(axis=1).mean())
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def parse_fractions(text: str) -> List[float]:
    """'0,0.1,1' -> [0.0, 0.1, 1.0], each in [0, 1]."""
    vals = [float(v) for v in text.split(',') if v.strip()]
    bad = [v for v in vals if not 0.0 <= v <= 1.0]
    if bad or not vals:
        raise ValueError(f'growth fractions must be numbers in [0, 1], got {text!r}')
    return vals
