"""Train the query network in a PCA-whitened gallery space, then fold it back into the map's.

``vpr-ros train asym --gallery-whiten K`` fits PCA whitening ``x -> W (x - mu)`` (``W``: K x D)
on the training images' gallery features and trains ours against the whitened features: the
K directions that vary most between images, each with unit variance, instead of a D-d target
whose few dominant directions (the shared mean, the lighting) might swamp the ones that tell
places apart. On the synthetic world it measured worse than the raw space (README), so it is
off by default.

The map is not changed. For a query vector ``a`` in the whitened space and a map descriptor
``g``, ``a . W (g - mu) = (W^T a) . g - (W^T a) . mu``; the last term is the same for every map
entry, so ``W^T a`` ranks the raw map exactly as ``a`` ranks the whitened one. ``fold`` turns
the K-d projection ``P`` into the D-d projection ``W^T P``: the trained network is an ordinary
query network of the gallery's width, searched against the unchanged map (checkpoints, ONNX
and the nodes see nothing new). The whitened map entries are not re-normalised: that is what
the raw map's inner product computes, so training uses them the same way.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch


@dataclasses.dataclass
class Whitening:
    """PCA whitening ``x -> (x - mean) @ matrix.T`` of gallery descriptors."""

    mean: np.ndarray          # (D,)
    matrix: np.ndarray        # (K, D): rows = principal directions / sqrt(K * eigenvalue)
    explained: float          # share of the variance the K directions hold
    fit_seconds: float = 0.0

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[0])

    def apply(self, feats: np.ndarray) -> np.ndarray:
        """(N, K) float32 whitened features; E ||x||^2 = 1 on the features it was fitted to."""
        x = np.asarray(feats, dtype=np.float64) - self.mean
        return (x @ self.matrix.T).astype(np.float32)

    def summary(self) -> dict:
        return {'dim': self.dim, 'explained_variance': self.explained,
                'fit_seconds': self.fit_seconds}


def fit_whitening(feats: np.ndarray, dim: int, eps: float = 1e-6) -> Whitening:
    """PCA whitening of ``feats`` (N, D) keeping ``dim`` components (1 <= dim <= min(N-1, D)).

    Each kept direction is scaled to variance 1/dim, so whitened features have unit squared
    norm on average and the loss temperature keeps its meaning.
    """
    t0 = time.perf_counter()
    x = np.asarray(feats, dtype=np.float64)
    n, d = x.shape
    if not 1 <= dim <= min(n - 1, d):
        raise ValueError(f'gallery_whiten must be between 1 and {min(n - 1, d)} for {n} '
                         f'training descriptors of width {d}, got {dim}')
    mean = x.mean(axis=0)
    cov = np.cov(x - mean, rowvar=False, bias=True)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1][:dim]
    kept = np.clip(vals[order], eps, None)
    matrix = vecs[:, order].T / np.sqrt(kept * dim)[:, None]
    explained = float(vals[order].sum() / max(vals.clip(0, None).sum(), eps))
    return Whitening(mean, matrix, explained, time.perf_counter() - t0)


def whitened_projection(model, dim: int) -> None:
    """Give ``model`` a fresh K-d linear projection (trained, then folded back by ``fold``)."""
    old = model.projection
    if not isinstance(old, torch.nn.Linear):
        raise ValueError('--gallery-whiten needs a query model with a linear projection')
    model.projection = torch.nn.Linear(old.in_features, dim).to(old.weight.dtype)
    model.dim = dim


@torch.no_grad()
def fold(model, white: Whitening) -> None:
    """Replace ``model``'s K-d projection ``P`` by the D-d ``W^T P`` (same ranking of the raw
    map as ``P`` of the whitened map; see the module docstring)."""
    proj = model.projection
    back = torch.as_tensor(white.matrix.T, dtype=torch.float64)        # (D, K)
    folded = torch.nn.Linear(proj.in_features, back.shape[0]).to(proj.weight.dtype)
    folded.weight.copy_((back @ proj.weight.double()).to(proj.weight.dtype))
    folded.bias.copy_((back @ proj.bias.double()).to(proj.bias.dtype))
    model.projection = folded
    model.dim = int(back.shape[0])
