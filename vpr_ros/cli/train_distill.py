"""D2-VPR distillation: stage 1 MSE to a teacher, stage 2 multi-similarity fine-tuning.

Every field of vpr_ros.training.distill.DistillConfig is a flag (underscores become dashes;
dict fields take JSON, e.g. --student-kwargs '{"depth": 4}').
"""
from __future__ import annotations

from vpr_ros.cli.dataclass_args import add_dataclass_arguments, dataclass_from_args
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
    add_dataclass_arguments(parser, DistillConfig, help=HELP)


def run(args) -> int:
    """Distil, print the loss of each stage."""
    cfg = dataclass_from_args(DistillConfig, args)
    log = distill(cfg)
    for stage in ('stage1', 'stage2'):
        if log.get(stage):
            print(f'{stage}: loss {log[stage][0]["loss"]:.6g} -> {log[stage][-1]["loss"]:.6g}, '
                  f'checkpoint {log.get(stage + "_checkpoint")}')
    return 0
