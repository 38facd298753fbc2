"""What every aggregator declares: its options and its output width.

An aggregator pools backbone features into a global descriptor. It declares

* ``OPTIONS``: the constructor keywords a model factory may pass through from ``create_model``;
* ``output_width(in_dim, **options)``: the descriptor width for those arguments (the instance
  has it as ``out_dim``), so a model's native width is known before anything is built;
* ``fit_width(in_dim, dim, options)``: options adjusted so that the native width equals a
  requested ``dim`` when the aggregator can do that itself (default: unchanged).
"""
from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import nn


def feature_map(feats) -> torch.Tensor:
    """The (B,C,H,W) map of a backbone output (a tensor or a ``(map, cls)`` tuple)."""
    return feats[0] if isinstance(feats, (tuple, list)) else feats


class Aggregator(nn.Module):
    """Base of the aggregators (adds no parameters: state-dict keys are the subclass's)."""

    OPTIONS: Tuple[str, ...] = ()
    out_dim: int

    @classmethod
    def output_width(cls, in_dim: int, **options) -> int:
        raise NotImplementedError

    @classmethod
    def fit_width(cls, in_dim: int, dim, options: Dict) -> Dict:
        return options


class TokenAggregator(nn.Module):
    """Adapts a backbone's (patch map, CLS) output to an aggregator taking (CLS, map)."""

    def __init__(self, agg: nn.Module):
        super().__init__()
        self.agg = agg
        self.out_dim = agg.out_dim

    def forward(self, feats):
        fmap, cls = feats
        return self.agg((cls, fmap))
