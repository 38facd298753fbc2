"""What one `vpr-ros train asym` run trains on and starts from: the frozen gallery model, the
training rows with their cached gallery features, a reused student, the optional whitened
space, the shared least-squares warm start and each run's learning rate."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from vpr_ros.training.asym import AsymTrainConfig


def load_gallery_model(cfg: AsymTrainConfig):
    """The frozen gallery model of ``cfg`` (registered name, weights file or checkpoint)."""
    from vpr_ros.models.checkpoint import is_checkpoint
    from vpr_ros.models.runtime import build_torch_model
    from vpr_ros.models.weights_source import require_trained
    ckpt = cfg.gallery_checkpoint
    size = tuple(cfg.gallery_input_size) or None
    if ckpt and is_checkpoint(ckpt):
        gallery, meta = build_torch_model(checkpoint=ckpt, input_size=size)
    else:
        gallery, meta = build_torch_model(model=cfg.gallery_model, weights=ckpt, input_size=size)
    # the loader hashed the weights it loaded: the feature cache's key reads it from here
    # (training.gallery_cache.gallery_fingerprint) instead of hashing them again
    gallery.meta = {'weights_fingerprint': meta['weights_fingerprint']}
    # a random gallery part would make the feature cache (and every map) irreproducible
    require_trained(gallery, getattr(cfg, 'allow_random_weights', False), 'a training cache')
    return gallery


def training_rows(cfg: AsymTrainConfig, gallery, cache: str):
    """(rows, gallery features, manifest) of the training data (GSV-Cities, raw MSLS or VG:
    vpr_ros.training.places.read_rows): ``cfg.data`` may list several datasets
    (comma-separated); each keeps its own places and its own gallery-feature cache entry, so
    adding a dataset extracts only that dataset's features. The features of one dataset are
    its cache entry's read-only memmap; several are concatenated in memory."""
    import numpy as np
    from vpr_ros.training.gallery_cache import cached_gallery_features
    from vpr_ros.training.places import concat_rows, read_rows
    parts, feats, metas = [], [], []
    for root in [d.strip() for d in cfg.data.split(',') if d.strip()]:
        rows = read_rows(root, cell_m=cfg.place_cell_m, yaw_bins=cfg.place_yaw_bins)
        f, meta = cached_gallery_features(gallery, rows.paths, cache, cfg.gallery_model,
                                          cfg.gallery_checkpoint, progress=cfg.progress,
                                          backend=cfg.gallery_backend, threads=cfg.threads,
                                          executor=cfg.gallery_executor,
                                          workers=cfg.gallery_workers)
        parts.append(rows)
        feats.append(f)
        metas.append(meta)
    meta = dict(metas[0], num_images=sum(m['num_images'] for m in metas),
                extract_seconds=sum(m['extract_seconds'] for m in metas),
                cached=all(m['cached'] for m in metas))
    # one dataset: its cache entry stays a memmap on disk (no copy of GSV-Cities' features)
    return concat_rows(parts), feats[0] if len(feats) == 1 else np.concatenate(feats), meta


def load_student(cfg: AsymTrainConfig, gdim: int, copy_to: Path):
    """(model, history) of ``cfg.student_checkpoint``, a symmetric student of another run with
    this run's query model, input size and descriptor width; copied to ``copy_to`` so the run
    folder holds every checkpoint its report names."""
    import shutil
    from vpr_ros.models.checkpoint import load_checkpoint
    path = cfg.student_checkpoint
    model, meta = load_checkpoint(path)
    extra = meta.get('extra') or {}
    want = {'method': 'symmetric', 'model': cfg.query_model,
            'input_size': list(cfg.input_size), 'dim': gdim}
    got = {'method': extra.get('method'), 'model': meta.get('name'),
           'input_size': list(model.input_size), 'dim': int(model.dim)}
    bad = {k: (got[k], v) for k, v in want.items() if got[k] != v}
    if bad:
        raise SystemExit(f'vpr-ros train asym: --student-checkpoint {path!r} does not fit this '
                         'run: ' + ', '.join(f'{k} {g!r} (this run: {w!r})'
                                             for k, (g, w) in bad.items()))
    hist = dict(extra.get('history') or {}, loaded_from=str(path))
    if Path(path).resolve() != copy_to.resolve():
        shutil.copyfile(path, copy_to)
    return model.eval(), hist


def whitened_data(cfg: AsymTrainConfig, data):
    """(whitening or None, the training data ours trains on): with ``cfg.gallery_whiten`` the
    gallery features are PCA-whitened, fitted on ``data``'s own features; the baselines keep
    the raw ones."""
    if not cfg.gallery_whiten:
        return None, data
    from vpr_ros.training.whitening import fit_whitening
    white = fit_whitening(data.gallery, cfg.gallery_whiten)
    deg = data.degenerate and dataclasses.replace(data.degenerate,
                                                  gallery=white.apply(data.degenerate.gallery))
    return white, dataclasses.replace(data, gallery=white.apply(data.gallery), degenerate=deg)


def run_config(cfg: AsymTrainConfig, method: str, start) -> AsymTrainConfig:
    """``cfg`` of one training run. The symmetric student trains ``student_epochs`` when set
    (so a student can get the whole budget of ours' two stages). Ours (and its ablations)
    fine-tuning a student train at ``from_student_lr_scale`` times lr and lr_min. Measured at
    72x96 from a 12-epoch student: 2x gave ours +0.8 to +1.8 R@1 over 1x on three runs
    (README), 0.3x lost 4.8. CSD and ours from the pretrained weights keep lr."""
    if method == 'symmetric':
        return dataclasses.replace(cfg, epochs=cfg.student_epochs) if cfg.student_epochs > 0 \
            else cfg
    if method != 'asym' or not start or cfg.from_student_lr_scale == 1.0:
        return cfg
    k = cfg.from_student_lr_scale
    return dataclasses.replace(cfg, lr=cfg.lr * k, lr_min=cfg.lr_min * k)


def shared_warm_start(model, data, cfg: AsymTrainConfig, done: dict) -> dict:
    """Warm-start ``model``'s projection once per training set and copy it to the next runs
    of the same set: ours and CSD start from one projection, and both count its time."""
    from vpr_ros.training.asym import warm_start_projection
    proj = getattr(model, 'projection', None)
    if id(data) in done and proj is not None:
        state, info = done[id(data)]
        proj.load_state_dict(state)
        return info
    info = warm_start_projection(model, data, cfg.warm_start, cfg.warm_start_ridge, cfg.seed,
                                 cfg.warm_start_mode)
    if proj is not None:
        done[id(data)] = ({k: v.clone() for k, v in proj.state_dict().items()}, info)
    return info


def hubness_and_distractors(cfg, rows, feats, spec: str):
    """(hubness reference or None, growth distractors or None) of a run: the reference is the
    training images of ``cfg.hubness_places`` of the training places (``hubness_k`` 0: none),
    and ``train`` distractors are the other training images (vpr_ros/experiments/asym/hubness.py).
    ``cfg`` is an AsymTrainConfig or AsymEvalConfig."""
    from vpr_ros.experiments.asym.heldout import read_distractors
    from vpr_ros.experiments.asym.hubness import split_reference
    hub, keep = split_reference(rows.paths, rows.places, feats, cfg.hubness_k,
                                cfg.hubness_places, cfg.seed)
    paths = [p for p, k in zip(rows.paths, keep) if k]
    distractors = read_distractors(spec, paths, feats[keep] if len(feats) else feats)
    if distractors is not None and hub is not None and spec.strip() == 'train':
        distractors.source += (f' (the {len(hub.paths)} images of the training places that '
                               'serve as the hubness reference left out)')
    return hub, distractors
