"""D2-VPR two-stage training: distillation from a teacher, then metric fine-tuning.

Stage 1: MSE between the student's and the (frozen) teacher's L2-normalised descriptors,
all student parameters trainable, Adam (lr 2.5e-5), halved every 3 epochs (released code).
Stage 2: multi-similarity loss (alpha 1, beta 50, base 0, miner epsilon 0.1) on batches of
P places x K images, training only the last 4 blocks (+ adapters), the DRM, the aggregator and
the projection (vpr_ros.models.d2vpr.stage2_parameters).

The teacher is any registered model (default cricavpr_vitb14) or a vpr_ros checkpoint; when its
width differs from the student's, the student gets a linear projection to it, and the saved
checkpoints record ``compatible_with`` the teacher so the student can search its map.

Data: a GSV-Cities root, raw MSLS or a VG-layout folder (read by vpr_ros.training.places /
vpr_ros.io, the readers map building uses), or a folder of places ``root/<place_id>/*.jpg``.
Teacher descriptors are computed once and cached (no augmentation), so stage 1 costs one
teacher pass in total.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Dict

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from vpr_ros.imaging import read_image_file
from vpr_ros.models.checkpoint import (gallery_compat, is_checkpoint, load_checkpoint,
                                       save_checkpoint)
from vpr_ros.models.d2vpr import stage2_parameters
from vpr_ros.models.registry import create_model
from vpr_ros.training.batches import place_batches  # noqa: F401 - re-exported
from vpr_ros.training.ms_loss import multi_similarity_loss

IMAGE_EXT = ('.jpg', '.jpeg', '.png')


@dataclasses.dataclass
class DistillConfig:
    """Settings of ``vpr-ros train distill`` (one CLI flag per field)."""

    data: str = ''                       # GSV-Cities | MSLS | VG | root/<place_id>/*.jpg
    out: str = 'runs/distill'            # stage1.pt, stage2.pt, log.json
    student: str = 'd2vpr_vits14'
    student_kwargs: Dict = dataclasses.field(default_factory=dict)  # create_model options
    student_checkpoint: str = ''         # DINOv2 ViT-S/14 weights for the student backbone
    init: str = ''                       # start from this student checkpoint (e.g. stage1.pt)
    teacher: str = 'cricavpr_vitb14'     # registered model name
    teacher_kwargs: Dict = dataclasses.field(default_factory=dict)
    teacher_checkpoint: str = ''         # vpr_ros checkpoint, or weights passed as checkpoint=
    stages: str = '12'                   # '1', '2' or '12'
    epochs1: int = 20                    # paper: 20
    epochs2: int = 10                    # not given in the paper
    lr1: float = 2.5e-5
    lr2: float = 2.5e-5                  # not given in the paper
    lr_step_epochs: int = 3              # StepLR of the released code (0: constant lr)
    lr_gamma: float = 0.5
    batch_size: int = 32                 # stage 1
    places_per_batch: int = 16           # stage 2: P
    images_per_place: int = 4            # stage 2: K
    stage2_last_blocks: int = 4          # blocks 8-11 of 12
    ms_alpha: float = 1.0
    ms_beta: float = 50.0
    ms_base: float = 0.0
    ms_epsilon: float = 0.1
    max_steps: int = 0                   # per epoch; 0 = whole epoch
    workers: int = 0
    threads: int = 0                     # torch intra-op threads; 0 = default
    seed: int = 0


class PlaceFolder(Dataset):
    """Images of ``root/<place>/*`` as (uint8 (3, h, w) tensor, place label, index)."""

    def __init__(self, root: str, size):
        self.paths, labels = [], []
        if root and _dataset_layout(root):   # GSV-Cities, raw MSLS, VG: vpr_ros.io readers
            from vpr_ros.training.places import read_rows
            rows = read_rows(root)
            self.paths, labels = list(rows.paths), rows.places.tolist()
        places = sorted(p for p in Path(root).iterdir() if p.is_dir()) \
            if root and not self.paths else []
        for label, place in enumerate(places):
            files = sorted(f for f in place.iterdir() if f.suffix.lower() in IMAGE_EXT)
            self.paths += [str(f) for f in files]
            labels += [label] * len(files)
        if not self.paths:
            raise ValueError(f'no images in {root!r}: expected root/<place_id>/*.jpg|png')
        self.labels = np.asarray(labels, dtype=np.int64)
        self.size = (int(size[0]), int(size[1]))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        img = read_image_file(self.paths[i])
        if img.shape[:2] != self.size:
            img = cv2.resize(img, self.size[::-1], interpolation=cv2.INTER_AREA)
        return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1), \
            int(self.labels[i]), i


def _dataset_layout(root) -> str:
    """The dataset layout of ``root`` when it is one vpr_ros.io reads ('' for root/<place>/)."""
    from vpr_ros.io.datasets import detect_layout
    layout = detect_layout(root)
    if layout == 'vg':
        first = next((p for p in Path(root).rglob('@*') if p.suffix.lower() in IMAGE_EXT), None)
        return 'vg' if first is not None else ''
    return layout


def model_input(images: torch.Tensor, model) -> torch.Tensor:
    """uint8 (B, 3, h, w) -> the model's normalised input at its input size."""
    x = images.float().div_(255.0)
    if tuple(x.shape[-2:]) != tuple(model.input_size):
        x = F.interpolate(x, size=tuple(model.input_size), mode='bilinear',
                          align_corners=False, antialias=True)
    mean = torch.tensor(model.spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(model.spec.std).view(1, 3, 1, 1)
    return (x - mean) / std


def build_teacher(cfg: DistillConfig):
    """The frozen teacher (eval mode, no gradients)."""
    if cfg.teacher_checkpoint and is_checkpoint(cfg.teacher_checkpoint):
        teacher, _ = load_checkpoint(cfg.teacher_checkpoint)
    else:
        kw = dict(cfg.teacher_kwargs)
        if cfg.teacher_checkpoint:
            kw['checkpoint'] = cfg.teacher_checkpoint
        teacher = create_model(cfg.teacher, **kw)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.eval()


def build_student(cfg: DistillConfig, dim: int):
    """The student, projecting to ``dim`` (the teacher's width) when its own width differs."""
    if cfg.init:
        return load_checkpoint(cfg.init)[0]
    kw = dict(cfg.student_kwargs, dim=int(dim))
    if cfg.student_checkpoint:
        kw['checkpoint'] = cfg.student_checkpoint
    return create_model(cfg.student, **kw)


class Trainer:
    """Runs the stages of a DistillConfig; ``log`` holds the per-epoch losses."""

    def __init__(self, cfg: DistillConfig):
        self.cfg = cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.teacher = build_teacher(cfg)
        self.student = build_student(cfg, self.teacher.dim)
        if self.student.dim != self.teacher.dim:
            raise ValueError(f'student is {self.student.dim}-d, teacher {self.teacher.dim}-d')
        size = np.maximum(self.student.input_size, self.teacher.input_size).tolist()
        self.data = PlaceFolder(cfg.data, size)
        self.cache: Dict[int, torch.Tensor] = {}
        self.log = {'config': dataclasses.asdict(cfg), 'stage1': [], 'stage2': []}
        os.makedirs(cfg.out, exist_ok=True)

    def teacher_desc(self, images: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        todo = [j for j, i in enumerate(idx.tolist()) if i not in self.cache]
        if todo:
            with torch.no_grad():
                out = self.teacher(model_input(images[todo], self.teacher))
            for j, d in zip(todo, out):
                self.cache[int(idx[j])] = d
        return torch.stack([self.cache[int(i)] for i in idx])

    def _epochs(self, stage: int, params, loader_fn, loss_fn, epochs: int, lr: float):
        cfg, model = self.cfg, self.student
        trainable = {id(p) for p in params}
        for p in model.parameters():
            p.requires_grad_(id(p) in trainable)
        opt = torch.optim.Adam(params, lr=lr)
        sched = torch.optim.lr_scheduler.StepLR(opt, cfg.lr_step_epochs or 10 ** 9,
                                                cfg.lr_gamma)
        for ep in range(1, epochs + 1):
            model.train()
            for m in model.modules():  # frozen BatchNorms keep their running statistics
                if isinstance(m, torch.nn.BatchNorm2d) and not m.weight.requires_grad:
                    m.eval()
            losses, t0 = [], time.time()
            bar = tqdm(loader_fn(), desc=f'stage {stage} epoch {ep}/{epochs}', leave=False)
            for step, (images, labels, idx) in enumerate(bar):
                if cfg.max_steps and step >= cfg.max_steps:
                    break
                loss = loss_fn(images, labels, idx)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
                bar.set_postfix(loss=f'{losses[-1]:.4g}')
            sched.step()
            mean = float(np.mean(losses)) if losses else float('nan')
            print(f'stage {stage} epoch {ep}/{epochs}: loss {mean:.6g} '
                  f'({len(losses)} steps, {time.time() - t0:.1f} s)', flush=True)
            self.log[f'stage{stage}'].append({'epoch': ep, 'loss': mean, 'steps': losses})
            self._write_log()

    def stage1(self):
        """Distillation: MSE(student, teacher) on every image, all student parameters."""
        cfg = self.cfg
        gen = torch.Generator().manual_seed(cfg.seed)

        def loader():
            return DataLoader(self.data, batch_size=cfg.batch_size, shuffle=True,
                              num_workers=cfg.workers, generator=gen)

        def loss_fn(images, _labels, idx):
            target = self.teacher_desc(images, idx)
            return F.mse_loss(self.student(model_input(images, self.student)), target)

        self._epochs(1, list(self.student.parameters()), loader, loss_fn, cfg.epochs1, cfg.lr1)
        return self.save('stage1.pt', 1)

    def stage2(self):
        """Fine-tuning with the multi-similarity loss on P x K place batches."""
        cfg = self.cfg

        def loader():
            batches = place_batches(self.data.labels, cfg.places_per_batch,
                                    cfg.images_per_place, self.rng)
            return DataLoader(self.data, batch_sampler=[b.tolist() for b in batches],
                              num_workers=cfg.workers)

        def loss_fn(images, labels, _idx):
            desc = self.student(model_input(images, self.student))
            return multi_similarity_loss(desc, labels, cfg.ms_alpha, cfg.ms_beta, cfg.ms_base,
                                         cfg.ms_epsilon)

        params = stage2_parameters(self.student, cfg.stage2_last_blocks)
        self._epochs(2, params, loader, loss_fn, cfg.epochs2, cfg.lr2)
        return self.save('stage2.pt', 2)

    def save(self, name: str, stage: int) -> str:
        path = os.path.join(self.cfg.out, name)
        extra = {'method': 'd2vpr-distill', 'stage': stage, 'teacher': self.teacher.name,
                 'losses': [e['loss'] for e in self.log[f'stage{stage}']]}
        if self.teacher.spec.role in ('gallery', 'both'):
            extra['compatible_with'] = gallery_compat(self.teacher)  # fingerprint included
        save_checkpoint(path, self.student.eval(), extra)
        print(f'saved {path}')
        return path

    def _write_log(self):
        with open(os.path.join(self.cfg.out, 'log.json'), 'w') as f:
            json.dump(self.log, f, indent=1)


def distill(cfg: DistillConfig) -> Dict:
    """Run the configured stages; returns the log (losses per epoch, checkpoint paths)."""
    if set(cfg.stages) - set('12') or not cfg.stages:
        raise ValueError(f"stages must be '1', '2' or '12', got {cfg.stages!r}")
    trainer = Trainer(cfg)
    if '1' in cfg.stages:
        trainer.log['stage1_checkpoint'] = trainer.stage1()
    if '2' in cfg.stages:
        trainer.log['stage2_checkpoint'] = trainer.stage2()
    trainer._write_log()
    return trainer.log
