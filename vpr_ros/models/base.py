"""Backbone + aggregator composition with an explicit output width."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vpr_ros.models.spec import ModelSpec


class VPRModel(nn.Module):
    """A place-recognition model: image batch (B,3,H,W) -> L2-normalised descriptors (B, dim).

    ``backbone`` maps images to features (a (B,C,h,w) map or whatever the aggregator expects);
    ``aggregator`` pools them to a vector; an optional linear ``projection`` sets the output
    width explicitly (e.g. to match a gallery model's dimension); ``projection=True`` keeps one
    even when the widths already match (query networks: their mapping into the gallery's
    space is learned). ``input_size`` (h, w) overrides the spec's default for this instance.
    """

    def __init__(self, spec: ModelSpec, backbone: nn.Module, aggregator: nn.Module,
                 agg_dim: int, dim: Optional[int] = None, input_size=None,
                 projection: bool = False):
        super().__init__()
        self.spec = spec
        self.backbone = backbone
        self.aggregator = aggregator
        self.dim = int(dim or spec.dim)
        if self.dim == agg_dim and not projection:
            self.projection = nn.Identity()
        else:
            self.projection = nn.Linear(agg_dim, self.dim)
            if self.dim == agg_dim:  # starts as the identity: same output as without it
                nn.init.eye_(self.projection.weight)
                nn.init.zeros_(self.projection.bias)
        self._input_size = tuple(int(v) for v in (input_size or spec.input_size))

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input_size(self):
        """(height, width) the model expects after preprocessing."""
        return self._input_size

    @property
    def mean(self):
        return tuple(self.spec.mean)

    @property
    def std(self):
        return tuple(self.spec.std)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(images)
        desc = self.projection(self.aggregator(feats))
        return F.normalize(desc, dim=-1)

    def preprocess(self, rgb: np.ndarray, input_size=None) -> torch.Tensor:
        """uint8 RGB image (H,W,3) or batch (B,H,W,3) -> normalised float tensor (B,3,h,w)."""
        return preprocess(rgb, input_size or self.input_size, self.spec.mean, self.spec.std)

    @torch.inference_mode()
    def encode(self, rgb: np.ndarray) -> np.ndarray:
        """Encode uint8 RGB image(s) to float32 descriptors (B, dim)."""
        self.eval()
        return self(self.preprocess(rgb)).float().cpu().numpy()


def preprocess(rgb: np.ndarray, size, mean, std) -> torch.Tensor:
    """Resize (bilinear, antialiased) and normalise uint8 RGB image(s) to a (B,3,h,w) tensor."""
    arr = np.asarray(rgb)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f'expected RGB image(s) shaped (H,W,3) or (B,H,W,3), got {arr.shape}')
    if not arr.flags.c_contiguous or not arr.flags.writeable:  # e.g. a view of a message
        arr = np.array(arr, copy=True, order='C')  # (torch cannot wrap read-only memory)
    x = torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255.0)
    h, w = int(size[0]), int(size[1])
    if x.shape[-2:] != (h, w):
        x = F.interpolate(x, size=(h, w), mode='bilinear', align_corners=False, antialias=True)
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


def compose(backbone: nn.Module, aggregator: nn.Module, *, spec: ModelSpec,
            dim: Optional[int] = None, input_size=None, projection: bool = False) -> VPRModel:
    """backbone -> aggregator (-> linear projection) as a VPRModel.

    The aggregator's width is its declared ``out_dim`` (vpr_ros.models.aggregators); the
    output width is ``dim`` (default: the aggregator's width; a different one adds a linear
    projection, as does ``projection=True``).
    """
    width = int(getattr(aggregator, 'out_dim', 0) or 0)
    if width < 1:
        raise ValueError(f'{type(aggregator).__name__} does not declare its output width '
                         f'(out_dim); give it the input width (e.g. GeM(in_dim=C))')
    return VPRModel(spec, backbone, aggregator, width, dim or width, input_size=input_size,
                    projection=projection)
