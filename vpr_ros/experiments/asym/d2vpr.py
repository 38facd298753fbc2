"""The D2-VPR row of ``vpr-ros train asym``: a distilled ViT searched against the same map.

Two stages on the same training images as ours (vpr_ros.training.asym): stage 1 regresses the
frozen gallery descriptor of each image (MSE, every parameter: the gallery model is the
teacher, so the student can be searched against the map it built), stage 2 fine-tunes the last
blocks, the DRM, the aggregator and the projection with the multi-similarity loss on place
labels (vpr_ros.models.d2vpr.stage2_parameters). Both stages are evaluated against the gallery
database, so the report shows what each stage does to compatibility.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Tuple

import torch

from vpr_ros.training.asym import AsymTrainConfig, load_query_images, TrainData, \
    train_query_network


def make_d2vpr(cfg: AsymTrainConfig, dim: int):
    """The D2-VPR student at cfg.d2vpr_input_size projecting to the gallery width ``dim``."""
    from vpr_ros.models import create_model
    kw = dict(dim=int(dim), input_size=tuple(cfg.d2vpr_input_size))
    if cfg.d2vpr_checkpoint:
        kw['checkpoint'] = cfg.d2vpr_checkpoint
    return create_model(cfg.d2vpr_model, pretrained=bool(cfg.d2vpr_checkpoint), **kw)


def train_d2vpr(cfg: AsymTrainConfig, data: TrainData, dim: int
                ) -> Tuple[Dict[str, torch.nn.Module], Dict[str, Dict]]:
    """({'d2vpr_stage1': model, 'd2vpr': model}, their training histories)."""
    import copy
    from vpr_ros.models.d2vpr import stage2_parameters
    model = make_d2vpr(cfg, dim)
    images = load_query_images(data.paths, model.input_size, cfg.workers, cfg.progress)
    d2_data = dataclasses.replace(data, images=images)
    base = dataclasses.replace(cfg, lr=cfg.d2vpr_lr, lr_min=cfg.d2vpr_lr / 10)
    s1_cfg = dataclasses.replace(base, epochs=cfg.d2vpr_epochs1)
    model, h1 = train_query_network(s1_cfg, d2_data, method='distill', model=model,
                                    tag='d2vpr_stage1')
    stage1 = copy.deepcopy(model).eval()
    models, hists = {'d2vpr_stage1': stage1}, {'d2vpr_stage1': h1}
    if cfg.d2vpr_epochs2 > 0:
        s2_cfg = dataclasses.replace(base, epochs=cfg.d2vpr_epochs2)
        model, h2 = train_query_network(s2_cfg, d2_data, method='symmetric', model=model,
                                        tag='d2vpr', params=stage2_parameters(model))
        h2['method'] = 'd2vpr'
        models['d2vpr'], hists['d2vpr'] = model.eval(), h2
    return models, hists
