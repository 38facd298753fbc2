"""Fine-tune a gallery model for place recognition (multi-similarity loss, P x K batches).

Every field of vpr_ros.training.gallery_finetune.GalleryConfig is a flag (underscores become
dashes; tuples are comma lists, e.g. --train towns/1001,towns/1002 --input-size 168,224).
``--evaluate DIR[,DIR]`` then reports Recall@1/5 per condition on held-out VG folders for the
trained model and for ``--baseline``; ``--export FILE`` writes the float16 packaged weights.
"""
from __future__ import annotations

import json
from pathlib import Path

from vpr_ros.cli.dataclass_args import add_dataclass_arguments, dataclass_from_args
from vpr_ros.training.gallery_finetune import (GalleryConfig, export_packaged, train_gallery,
                                               vg_recall)

HELP = {
    'train': 'comma list of GSV-Cities roots (vpr-ros world --formats gsv)',
    'val': 'held-out VG folder (with database/ and queries/) for the per-epoch R@1',
    'out': 'output folder (last.safetensors, log.json, eval.json)',
    'model': 'registered start model with pretrained weights',
    'init': 'registered model whose weights start the run (e.g. efficientnet_lite2_vpr, to '
            'train the packaged weights further)',
    'input_size': 'H,W of the training and inference input',
    'freeze_blocks': 'EfficientNet stages kept frozen after the stem',
    'max_steps': 'steps per epoch (0 = every place once per epoch)',
    'weather': 'share of training images given one of low light, haze, defocus or motion blur',
    'scales': 'multi-scale training: per-batch factors of --input-size (e.g. 0.75 1.0 1.25)',
}


def add_arguments(parser) -> None:
    add_dataclass_arguments(parser, GalleryConfig, help=HELP)
    parser.add_argument('--evaluate', default='', help='comma list of held-out VG folders')
    parser.add_argument('--baseline', default='efficientnet_lite0_gem',
                        help='registered model compared with on --evaluate folders')
    parser.add_argument('--export', default='', help='write float16 packaged weights here')
    parser.add_argument('--export-name', default='',
                        help='packaged model the exported file is for (default: the _vpr twin '
                             'of --model, e.g. efficientnet_lite2_vpr)')


def evaluate_folders(models: dict, folders, out_path=None) -> dict:
    """{model label: {folder: vg_recall}}; printed as one line per condition."""
    report = {}
    for label, model in models.items():
        report[label] = {}
        for folder in folders:
            rec = vg_recall(model, folder)
            report[label][folder] = rec
            for cond, r in rec.items():
                print(f'{label:<40} {Path(folder).parent.name:<12} {cond:<9} '
                      + ' '.join(f'{k} {v:.3f}' for k, v in r.items() if k != 'queries'))
    if out_path:
        Path(out_path).write_text(json.dumps(report, indent=1))
    return report


def run(args) -> int:
    from vpr_ros.models.registry import create_model, get_spec
    cfg = dataclass_from_args(GalleryConfig, args)
    model, log = train_gallery(cfg)
    print(f'loss {log["epochs"][0]["loss"]:.4f} -> {log["epochs"][-1]["loss"]:.4f} in '
          f'{log["train_s"]:.0f} s' if log['epochs'] else 'no epochs run')
    if args.export:
        export_packaged(model, args.export, args.export_name, extra={'training': log})
        print(f'packaged weights: {args.export}')
    folders = [s for s in args.evaluate.split(',') if s]
    if folders:
        models = {f'{args.baseline} {s[0]}x{s[1]}': create_model(args.baseline, True,
                                                                 input_size=s)
                  for s in dict.fromkeys([tuple(get_spec(args.baseline).input_size),
                                          tuple(cfg.input_size)])}
        models[f'fine-tuned {cfg.input_size[0]}x{cfg.input_size[1]}'] = model
        evaluate_folders(models, folders, Path(cfg.out) / 'eval.json')
    return 0
