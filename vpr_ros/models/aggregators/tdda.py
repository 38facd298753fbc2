"""TDDA: D2-VPR's Top-Down-attention-based Deformable Aggregator (arXiv 2511.12528).

Input: the CLS token (B, D) and the patch map (B, D, h, w) of the student after the DRM
(D = 768 for D2-VPR). Output: 14 tokens of D (1 global + 4 medium + 9 small regions),
flattened and L2-normalised: 14 * 768 = 10752-d.

How this module reads the spec (and the released code, where the spec is silent):

* The offset generator's 1536 input channels are the DRM patch map (768) concatenated with
  the CLS token broadcast over the map (768) -- not the 4x384 DRM input concat, which never
  reaches the aggregator. It is a per-position 1x1 conv MLP giving 4 channels per patch:
  (dx, dy, sx, sy).
* Offsets are per sampling point, not per region: every region has a base grid of as many
  points as it covers patches (medium 8x8, small 5x5 / 5x6 / 6x5 / 6x6 on a 16x16 map); the
  offset map is sampled (bilinear) at each point, the point is scaled about the region centre
  by 0.5 + 1.5 * sigmoid(s) and shifted by clamp(d, -0.25, 0.25) times the region size, then
  clamped to the map. ``offset_lookup='released'`` (default: what the released weights were
  trained with) passes the [0, 1] base grid to grid_sample unnormalised, as the released code
  does (so every region reads offsets from the map's lower-right quarter); ``'roi'`` samples
  the offset map where the point is (a variant for training from scratch).
* Region features: grid_sample of the patch map at the deformed points, L2-norm per point,
  GeM with one learnable p (3) shared by all regions.
* Global token: the CLS token plus the bottom-up fusion (small -> medium -> global): each
  medium region adds MLP(mean of its 4 overlapping small regions), the global adds MLP(mean of
  the 4 enhanced medium regions). As in the released code the descriptor keeps the medium
  tokens before enhancement; the enhanced ones only feed the global token.
* Position encoder: Linear(4, 128) -> ReLU -> Linear(128, D) of each region's deformed
  (cx, cy, w, h) (mean, and max - min of its points; the global region is (0.5, 0.5, 1, 1)),
  added to the tokens.
* The offset map depends only on the image, so it is computed once per forward;
  ``repeat_offsets=True`` recomputes it for each of the 13 regions like the released code
  (identical output, ~2.4 GMACs more at 224: kept for the cost comparison).
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from vpr_ros.models.aggregators.base import Aggregator

# small regions (row-major 3x3) that overlap each medium region (row-major 2x2)
MEDIUM_FROM_SMALL = ((0, 1, 3, 4), (1, 2, 4, 5), (3, 4, 6, 7), (4, 5, 7, 8))


def region_bounds(n: int) -> Tuple[List[int], List[int]]:
    """Patch-index boundaries of the 2 medium and 3 small splits of an n-patch side.

    For n = 16: [0, 8, 16] and [0, 5, 11, 16], CricaVPR's region layout.
    """
    return [0, n // 2, n], [0, round(5 * n / 16), round(11 * n / 16), n]


Box = Tuple[Tuple[float, float, float, float], Tuple[int, int]]


def region_boxes(h: int, w: int) -> List[Box]:
    """The 13 (ROI (x1, y1, x2, y2) in [0, 1], (rows, cols)) of the medium then small regions."""
    out = []
    for level in (0, 1):
        ys, xs = region_bounds(h)[level], region_bounds(w)[level]
        for i in range(len(ys) - 1):
            for j in range(len(xs) - 1):
                roi = (xs[j] / w, ys[i] / h, xs[j + 1] / w, ys[i + 1] / h)
                out.append((roi, (ys[i + 1] - ys[i], xs[j + 1] - xs[j])))
    return out


def fusion_mlp(dim: int, hidden: int) -> nn.Sequential:
    """The bottom-up fusion MLP: dim -> hidden (LayerNorm, GELU, dropout 0.1) -> dim."""
    return nn.Sequential(nn.Linear(dim, hidden), nn.LayerNorm(hidden), nn.GELU(),
                         nn.Dropout(0.1), nn.Linear(hidden, dim))


def cross_image_encoder(dim: int = 768, heads: int = 16, ffn: int = 2048,
                        layers: int = 2) -> nn.Module:
    """CricaVPR's cross-image encoder. Input (B, 14, D) is read sequence-first, so each of the
    14 region tokens attends over the B images of the batch."""
    heads = heads if dim % heads == 0 else 1
    layer = nn.TransformerEncoderLayer(d_model=dim, nhead=heads, dim_feedforward=ffn,
                                       activation='gelu', dropout=0.1, batch_first=False)
    return nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)


class TDDA(Aggregator):
    """Top-down deformable aggregator: (cls (B,D), patch map (B,D,h,w)) -> (B, 14*D)."""

    OPTIONS = ('repeat_offsets', 'offset_lookup', 'cross_image', 'offset_hidden',
               'fusion_hidden', 'pos_hidden')

    @classmethod
    def output_width(cls, in_dim: int = 768, **options) -> int:
        return 14 * int(in_dim)

    def __init__(self, dim: int = 768, offset_hidden: int = 512, fusion_hidden: int = 256,
                 pos_hidden: int = 128, max_shift: float = 0.25, gem_p: float = 3.0,
                 repeat_offsets: bool = False, offset_lookup: str = 'released',
                 cross_image: bool = False):
        super().__init__()
        if offset_lookup not in ('roi', 'released'):
            raise ValueError(f"offset_lookup must be 'roi' or 'released', got {offset_lookup!r}")
        self.dim, self.max_shift = dim, max_shift
        self.out_dim = self.output_width(dim)
        self.repeat_offsets, self.offset_lookup = repeat_offsets, offset_lookup
        self.offset_generator = nn.Sequential(
            nn.Conv2d(2 * dim, offset_hidden, 1), nn.ReLU(), nn.Conv2d(offset_hidden, 4, 1))
        self.p = nn.Parameter(torch.ones(1) * gem_p)
        self.small_to_medium = fusion_mlp(dim, fusion_hidden)
        self.medium_to_global = fusion_mlp(dim, fusion_hidden)
        self.pos_encoder = nn.Sequential(nn.Linear(4, pos_hidden), nn.ReLU(),
                                         nn.Linear(pos_hidden, dim))
        self.encoder = None
        if cross_image:
            self.encoder = cross_image_encoder(dim)
        self._grids: Dict[Tuple[int, int], Dict[str, torch.Tensor]] = {}

    def _layout(self, h: int, w: int, device) -> Dict[str, torch.Tensor]:
        """Base grid points (P, 2) and each point's region centre / size, cached per map size."""
        key = (h, w)
        if key not in self._grids:
            pts, ctr, size, counts = [], [], [], []
            for (x1, y1, x2, y2), (rows, cols) in region_boxes(h, w):
                gy, gx = torch.meshgrid(torch.linspace(y1, y2, rows), torch.linspace(x1, x2, cols),
                                        indexing='ij')
                pts.append(torch.stack((gx, gy), -1).reshape(-1, 2))
                ctr.append(torch.tensor([(x1 + x2) / 2, (y1 + y2) / 2]).expand(rows * cols, 2))
                size.append(torch.tensor([x2 - x1, y2 - y1]).expand(rows * cols, 2))
                counts.append(rows * cols)
            self._grids[key] = {'points': torch.cat(pts), 'centre': torch.cat(ctr),
                                'size': torch.cat(size), 'counts': counts}
        lay = self._grids[key]
        return {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in lay.items()}

    def offset_map(self, cls: torch.Tensor, fmap: torch.Tensor) -> torch.Tensor:
        """(B, 4, h, w): the offset generator on [patch map, broadcast CLS]."""
        g = cls[:, :, None, None].expand(-1, -1, fmap.shape[2], fmap.shape[3])
        return self.offset_generator(torch.cat([fmap, g], dim=1))

    def _lookup(self, omap: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        grid = points if self.offset_lookup == 'released' else points * 2 - 1
        grid = grid[None, None].expand(omap.shape[0], -1, -1, -1)
        out = F.grid_sample(omap, grid, mode='bilinear', padding_mode='border',
                            align_corners=True)
        return out[:, :, 0].transpose(1, 2)  # (B, P, 4)

    def deform(self, cls: torch.Tensor, fmap: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Deformed sampling points of the 13 regions.

        Returns 'points' (B, P, 2) in [0, 1], 'shift' (B, P, 2) (clamped), 'scale' (B, P, 2),
        and 'counts' (points per region, medium regions first).
        """
        # int(): the layout is fixed per input size (also under ONNX tracing)
        lay = self._layout(int(fmap.shape[2]), int(fmap.shape[3]), fmap.device)
        if self.repeat_offsets:  # the released code's per-region recomputation
            chunks = torch.split(lay['points'], lay['counts'])
            raw = torch.cat([self._lookup(self.offset_map(cls, fmap), c) for c in chunks], 1)
        else:
            raw = self._lookup(self.offset_map(cls, fmap), lay['points'])
        shift = raw[..., :2].clamp(-self.max_shift, self.max_shift)
        scale = 0.5 + 1.5 * torch.sigmoid(raw[..., 2:])
        ctr = lay['centre']
        pts = ctr + (lay['points'] - ctr) * scale + shift * lay['size']
        return {'points': pts.clamp(0, 1), 'shift': shift, 'scale': scale,
                'counts': lay['counts']}

    def forward_tokens(self, cls: torch.Tensor, fmap: torch.Tensor):
        """The 14 tokens (B, 14, D) before flattening, and the 13 deformed boxes (B, 13, 4)."""
        d = self.deform(cls, fmap)
        grid = (d['points'] * 2 - 1)[:, None]  # (B, 1, P, 2)
        feats = F.grid_sample(fmap, grid, mode='bilinear', padding_mode='border',
                              align_corners=True)[:, :, 0]  # (B, D, P)
        feats = F.normalize(feats, dim=1).clamp(min=1e-6).pow(self.p)
        regions, boxes = [], []
        for f, pt in zip(torch.split(feats, d['counts'], dim=2),
                         torch.split(d['points'], d['counts'], dim=1)):
            regions.append(f.mean(dim=2).pow(1.0 / self.p))
            lo, hi = pt.amin(dim=1), pt.amax(dim=1)
            boxes.append(torch.cat([pt.mean(dim=1), hi - lo], dim=1))
        medium, small = regions[:4], regions[4:]
        enhanced = [m + self.small_to_medium(torch.stack([small[j] for j in adj]).mean(0))
                    for m, adj in zip(medium, MEDIUM_FROM_SMALL)]
        glob = cls + self.medium_to_global(torch.stack(enhanced).mean(0))
        tokens = torch.stack([glob] + regions, dim=1)
        boxes = torch.stack(boxes, dim=1)
        whole = boxes.new_tensor([0.5, 0.5, 1.0, 1.0]).expand(boxes.shape[0], 1, 4)
        tokens = tokens + self.pos_encoder(torch.cat([whole, boxes], dim=1))
        return tokens, boxes

    def forward(self, feats) -> torch.Tensor:
        cls, fmap = feats
        tokens, _ = self.forward_tokens(cls, fmap)
        if self.encoder is not None:  # attends across the batch (sequence axis = images)
            tokens = self.encoder(tokens)
        return F.normalize(tokens.flatten(1), dim=-1)
