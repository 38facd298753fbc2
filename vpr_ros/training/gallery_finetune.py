"""Fine-tune an ImageNet gallery model for place recognition (``vpr-ros train gallery``).

GSV-Cities-style training (Ali-bey et al.): batches of P places x K images, multi-similarity
loss with its miner (alpha 1, beta 50, base 0, epsilon 0.1; vpr_ros.training.ms_loss), AdamW
with a cosine schedule. The start point is a registered model with real pretrained weights
(default EfficientNet-Lite0 ImageNet + GeM), or with ``init`` the weights of another
registered model of the same architecture (a packaged one, to train it further); the stem
and the first ``freeze_blocks`` blocks stay frozen (their BatchNorm too). Augmentation: random
resized crops and colour jitter; optionally low light, haze and blur (``weather``) and a
per-batch input scale (``scales``). After every epoch the Recall@1 on a held-out VG folder
(``val``) is logged.

``export_packaged`` writes the result as the float16 safetensors file that
vpr_ros.models.packaged ships; ``vg_recall`` is the evaluation used for its model card.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vpr_ros.imaging import read_image_file
from vpr_ros.io.datasets import read_gsv_cities, read_vg
from vpr_ros.models.checkpoint import save_checkpoint
from vpr_ros.models.registry import create_model
from vpr_ros.training.batches import place_batches
from vpr_ros.training.ms_loss import multi_similarity_loss
from vpr_ros.training.weather_augment import adverse, pick_scale


@dataclasses.dataclass
class GalleryConfig:
    """Settings of ``vpr-ros train gallery`` (one CLI flag per field)."""

    train: Tuple[str, ...] = ()          # GSV-Cities roots (vpr-ros world --formats gsv)
    val: str = ''                        # VG folder with database/ and queries/ (held out)
    out: str = 'runs/gallery'            # last.safetensors, log.json
    model: str = 'efficientnet_lite0_gem'  # registered start model (pretrained weights)
    init: str = ''                       # registered model whose weights start the run
    input_size: Tuple[int, int] = (168, 224)  # (h, w) training and inference input
    epochs: int = 4
    lr: float = 2e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 20
    places_per_batch: int = 16           # P
    images_per_place: int = 4            # K
    freeze_blocks: int = 2               # stem + this many EfficientNet stages frozen
    crop_scale: float = 0.6              # random crops keep >= this share of the area
    jitter: float = 0.3                  # brightness/contrast/saturation +- this
    weather: float = 0.0                 # share of images given low light/haze/blur
    scales: Tuple[float, ...] = ()       # multi-scale training: per-batch input-size factors
    ms_alpha: float = 1.0
    ms_beta: float = 50.0
    ms_base: float = 0.0
    ms_epsilon: float = 0.1
    max_steps: int = 0                   # per epoch; 0 = whole epoch
    threads: int = 0                     # torch intra-op threads; 0 = default
    seed: int = 0
    progress: bool = True


def load_train_rows(roots: Sequence[str]):
    """(paths, labels) over all GSV roots; place ids made unique across roots."""
    paths: List[str] = []
    labels: List[int] = []
    for root in roots:
        rows = read_gsv_cities(root)
        base = max(labels) + 1 if labels else 0
        paths += [r.path for r in rows]
        labels += [base + r.place_id for r in rows]
    if not paths:
        raise ValueError('no training images: give GSV-Cities roots with --train')
    return paths, np.asarray(labels, dtype=np.int64)


def augment(images: Sequence[np.ndarray], size, mean, std, crop_scale: float, jitter: float,
            rng: np.random.Generator, weather: float = 0.0) -> torch.Tensor:
    """uint8 RGB images -> normalised (B,3,h,w): random resized crop + colour jitter, then
    with probability ``weather`` one adverse-condition transform (training.weather_augment)."""
    out = []
    for img in images:
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)
        hh, ww = x.shape[-2:]
        area = rng.uniform(crop_scale, 1.0)
        aspect = math.exp(rng.uniform(-0.1, 0.1))
        ch = min(hh, int(round(hh * math.sqrt(area / aspect))))
        cw = min(ww, int(round(ww * math.sqrt(area * aspect))))
        top, left = int(rng.integers(0, hh - ch + 1)), int(rng.integers(0, ww - cw + 1))
        x = F.interpolate(x[None, :, top:top + ch, left:left + cw], size=tuple(size),
                          mode='bilinear', align_corners=False, antialias=True)[0]
        if jitter > 0:
            b, c, s = rng.uniform(1 - jitter, 1 + jitter, 3)
            x = x * b
            x = (x - x.mean()) * c + x.mean()
            grey = x.mean(dim=0, keepdim=True)
            x = (x - grey) * s + grey
        out.append(adverse(x.clamp_(0, 1), rng, weather))
    x = torch.stack(out)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def freeze_early(model, blocks: int) -> List[torch.nn.Module]:
    """Freeze the stem and the first ``blocks`` stages of a timm EfficientNet backbone;
    returns the frozen modules (keep them in eval mode while training)."""
    net = model.backbone.net
    frozen = [net.conv_stem, net.bn1, *list(net.blocks)[:blocks]]
    for m in frozen:
        for p in m.parameters():
            p.requires_grad_(False)
    return frozen


def encode_paths(model, paths: Sequence[str], batch: int = 32,
                 backend: str = 'torch') -> np.ndarray:
    """Descriptors (N, dim) of image files at the model's input size (no augmentation)."""
    from vpr_ros.training.gallery_cache import extract_features
    return extract_features(model, paths, batch, progress=False, backend=backend)


def vg_recall(model, root: str, threshold_m: float = 25.0, ns: Sequence[int] = (1, 5),
              backend: str = 'torch') -> Dict[str, Dict[str, float]]:
    """Recall@N per query condition of ``root/database`` vs ``root/queries`` (VG layout).

    A query is correct at N when one of its N nearest database images lies within
    ``threshold_m`` metres. Also reports 'all' and 'chance' (R@1 of a random guess).
    """
    db, qs = read_vg(Path(root) / 'database'), read_vg(Path(root) / 'queries')
    d = encode_paths(model, [r.path for r in db], backend=backend)
    q = encode_paths(model, [r.path for r in qs], backend=backend)
    db_xy = np.array([[r.x, r.y] for r in db])
    q_xy = np.array([[r.x, r.y] for r in qs])
    from vpr_ros.evaluation.metrics import search_correct
    near = np.linalg.norm(q_xy[:, None] - db_xy[None], axis=2) <= threshold_m
    hit = np.cumsum(search_correct(q, d, q_xy, db_xy, threshold_m, max(ns)), axis=1) > 0
    conds = np.array([r.condition for r in qs])
    out: Dict[str, Dict[str, float]] = {}
    for c in [*dict.fromkeys(conds), 'all']:
        m = np.ones(len(qs), bool) if c == 'all' else conds == c
        out[c] = {f'R@{n}': float(hit[m, n - 1].mean()) for n in ns}
        out[c]['queries'] = int(m.sum())
    out['chance'] = {'R@1': float(near.mean())}
    return out


def start_from(model, init: str) -> None:
    """Load every tensor of ``model`` from the registered model ``init`` (e.g. continue the
    fine-tuning of the packaged multi-scale ``efficientnet_lite2_vpr`` on more towns, in the
    one-scale ``efficientnet_lite2_gem``); ValueError unless all of them match."""
    from vpr_ros.training.query_init import matching_tensors
    dst = model.state_dict()
    same = matching_tensors(create_model(init, pretrained=True).state_dict(), dst)
    missing = sorted(set(dst) - set(same))
    if missing:
        raise ValueError(f'--init {init}: {len(missing)} of {len(dst)} tensors of {model.name} '
                         f'have no match (first: {missing[0]}); use the packaged twin of '
                         f'--model (e.g. efficientnet_lite2_vpr for efficientnet_lite2_gem)')
    model.load_state_dict(same)


def train_gallery(cfg: GalleryConfig):
    """Fine-tune ``cfg.model``; returns (model in eval mode, log dict). Writes cfg.out."""
    torch.manual_seed(cfg.seed)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    # With init every tensor is replaced (start_from checks), so its own weights are not read.
    model = create_model(cfg.model, pretrained=not cfg.init, input_size=tuple(cfg.input_size))
    if cfg.init:
        start_from(model, cfg.init)
    frozen = freeze_early(model, cfg.freeze_blocks)
    paths, labels = load_train_rows(cfg.train)
    cache: Dict[int, np.ndarray] = {}
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = len(place_batches(labels, cfg.places_per_batch, cfg.images_per_place, rng))
    per_epoch = min(per_epoch, cfg.max_steps) if cfg.max_steps else per_epoch
    total = max(1, per_epoch * cfg.epochs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(
        1.0, (s + 1) / max(1, cfg.warmup_steps)) * 0.5 * (1 + math.cos(math.pi * s / total)))
    log = {'config': dataclasses.asdict(cfg), 'images': len(paths),
           'places': int(len(np.unique(labels))), 'epochs': []}
    if cfg.val:
        log['val_before'] = vg_recall(model, cfg.val)['all']['R@1']
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        for m in frozen:
            m.eval()
        batches = place_batches(labels, cfg.places_per_batch, cfg.images_per_place, rng)
        losses = []
        bar = tqdm(batches[:per_epoch], desc=f'epoch {epoch + 1}/{cfg.epochs}',
                   disable=not cfg.progress)
        for idx in bar:
            imgs = [cache[i] if i in cache else cache.setdefault(i, read_image_file(paths[i]))
                    for i in idx]
            x = augment(imgs, pick_scale(cfg.input_size, cfg.scales, rng), model.mean,
                        model.std, cfg.crop_scale, cfg.jitter, rng, cfg.weather)
            loss = multi_similarity_loss(model(x), torch.as_tensor(labels[idx]), cfg.ms_alpha,
                                         cfg.ms_beta, cfg.ms_base, cfg.ms_epsilon)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f'{np.mean(losses[-20:]):.4f}')
        entry = {'epoch': epoch + 1, 'loss': float(np.mean(losses)), 'steps': len(losses),
                 'elapsed_s': round(time.perf_counter() - t0, 1)}
        if cfg.val:
            entry['val_r1'] = vg_recall(model, cfg.val)['all']['R@1']
        log['epochs'].append(entry)
        print(json.dumps(entry), flush=True)
        save_checkpoint(str(out / 'last.safetensors'), model, extra={'gallery_finetune': entry})
        (out / 'log.json').write_text(json.dumps(log, indent=1))
    log['train_s'] = round(time.perf_counter() - t0, 1)
    (out / 'log.json').write_text(json.dumps(log, indent=1))
    return model.eval(), log


def export_packaged(model, path: str, name: str = '', extra: dict = None) -> dict:
    """Save ``model``'s weights as float16 under the registered packaged ``name`` (default:
    the packaged twin of the fine-tuned model, e.g. efficientnet_lite2_gem -> _lite2_vpr)."""
    from vpr_ros.models.packaged import PACKAGED, packaged_name, to_multiscale_state
    name = name or packaged_name(model.name)
    target = create_model(name, pretrained=False)
    state = model.state_dict()
    if PACKAGED[name].kind == 'msgem' and 'aggregator.p' in state:
        state = to_multiscale_state(state)  # fine-tuned at one scale, shipped multi-scale
    target.load_state_dict(state)
    return save_checkpoint(path, target.half(), extra=extra or {})
