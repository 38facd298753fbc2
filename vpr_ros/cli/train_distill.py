"""D2-VPR distillation: stage 1 MSE to a teacher, stage 2 multi-similarity fine-tuning.

Every field of vpr_ros.training.distill.DistillConfig is a flag (underscores become dashes;
dict fields take JSON, e.g. --student-kwargs '{"depth": 4}').
"""
from __future__ import annotations

import dataclasses
import json

from vpr_ros.training.distill import distill, DistillConfig

HELP = {
    'data': 'folder of places: DATA/<place_id>/*.jpg|png',
    'out': 'output folder (stage1.pt, stage2.pt, log.json)',
    'student_checkpoint': 'DINOv2 ViT-S/14 weights file for the student backbone',
    'teacher': 'registered teacher model (any gallery model: the student then gets a '
               'projection to its width)',
    'teacher_checkpoint': 'teacher weights: a vpr_ros checkpoint or a DINOv2 file',
    'init': 'student checkpoint to start from (e.g. OUT/stage1.pt with --stages 2)',
    'stages': "'1' (distillation), '2' (fine-tuning) or '12'",
    'max_steps': 'steps per epoch (0 = whole epoch)',
}


def add_arguments(parser) -> None:
    """One --flag per DistillConfig field."""
    for f in dataclasses.fields(DistillConfig):
        flag = '--' + f.name.replace('_', '-')
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING \
            else f.default
        kind = json.loads if isinstance(default, dict) else type(default)
        parser.add_argument(flag, dest=f.name, type=kind, default=default,
                            help=HELP.get(f.name, f'(default: {default})'))


def run(args) -> int:
    """Distil, print the loss of each stage."""
    cfg = DistillConfig(**{f.name: getattr(args, f.name)
                           for f in dataclasses.fields(DistillConfig)})
    log = distill(cfg)
    for stage in ('stage1', 'stage2'):
        if log.get(stage):
            print(f'{stage}: loss {log[stage][0]["loss"]:.6g} -> {log[stage][-1]["loss"]:.6g}, '
                  f'checkpoint {log.get(stage + "_checkpoint")}')
    return 0
