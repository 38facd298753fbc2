"""``vpr-ros hubness-reference``: the matcher's hubness reference for any query network.

``vpr-ros hubness-reference --checkpoint ours.pt --data town_train --out ours.hubness.npz``
encodes up to ``--max-images`` images of ``--data`` (GSV-Cities or VG layout, a map dir, a
manifest; comma-separated for several) with the query network and writes them with
``vpr_ros.hubness.save_reference``; give the file to the matcher as ``hubness_reference``.
Use images of places that are not in the map the robot searches (e.g. the query network's
training images): a reference image of a map place makes that place's entries look like hubs.
`vpr-ros train asym` writes one for ours (``ours_asym.hubness.npz``) by itself.
"""
from __future__ import annotations

import dataclasses

from vpr_ros.cli.dataclass_args import add_dataclass_arguments, dataclass_from_args


@dataclasses.dataclass
class HubnessReferenceConfig:
    """Settings of ``vpr-ros hubness-reference`` (each field is a --flag of the same name)."""

    checkpoint: str = ''            # the query network (vpr_ros checkpoint)
    data: str = ''                  # reference images: GSV | VG | map dir | manifest; a,b
    out: str = ''                   # the .npz to write
    max_images: int = 2000          # a random sample of the images, spread over the data
    k: int = 10                     # neighbours per map entry (the matcher's hubness_k)
    seed: int = 0
    threads: int = 2


def add_arguments(parser) -> None:
    """One --flag per HubnessReferenceConfig field."""
    add_dataclass_arguments(parser, HubnessReferenceConfig)


def build_reference(cfg: HubnessReferenceConfig) -> dict:
    """Encode the sampled images and write the reference; returns its metadata."""
    import numpy as np
    import torch
    from vpr_ros.hubness import save_reference
    from vpr_ros.models.checkpoint import load_checkpoint
    from vpr_ros.experiments.asym.recall import encode_paths
    from vpr_ros.training.places import concat_rows, read_rows
    if not (cfg.checkpoint and cfg.data and cfg.out):
        raise SystemExit('vpr-ros hubness-reference: --checkpoint, --data and --out are required')
    torch.set_num_threads(cfg.threads)
    model, meta = load_checkpoint(cfg.checkpoint)
    rows = concat_rows([read_rows(d.strip()) for d in cfg.data.split(',') if d.strip()])
    if len(rows.paths) < cfg.k:
        raise SystemExit(f'vpr-ros hubness-reference: {len(rows.paths)} images in {cfg.data!r}, '
                         f'fewer than k={cfg.k}')
    n = min(cfg.max_images, len(rows.paths))
    pick = np.sort(np.random.default_rng(cfg.seed).permutation(len(rows.paths))[:n])
    desc = encode_paths(model.eval(), [rows.paths[i] for i in pick], progress=True)
    target = (meta.get('compatible_with') or {}).get('encoder') or meta.get('name')
    return save_reference(cfg.out, desc, meta.get('name', ''), target, cfg.k)


def run(args) -> int:
    """Build and write the reference; print what was written."""
    cfg = dataclass_from_args(HubnessReferenceConfig, args)
    meta = build_reference(cfg)
    print(f'wrote {cfg.out}: {meta["num"]} reference descriptors of {meta["encoder"]} '
          f'({meta["dim"]}-d) for maps of {meta["compatible_with"]}; set the matcher\'s '
          f'hubness_reference to it')
    return 0
