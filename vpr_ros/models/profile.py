"""Parameters and compute of every registered model (``vpr-ros profile``).

MACs = FLOPs / 2 counted by torch.utils.flop_counter.FlopCounterMode on one image at the
model's input size (or ``--size``). Models are built on the meta device (no memory, no
weights), so even ViT-g profiles in a second. Attention runs through the math SDPA path:
FlopCounterMode has no formula for the fused CPU attention kernel and would silently drop
the QK^T and AV products (0.61 GMACs in ViT-S/14 at 224, 1.22 in ViT-B/14). Element-wise ops
(norms, activations, softmax, grid_sample, GeM) are not counted, as in the usual MAC tables.

The D2-VPR table compares the student with the CricaVPR teacher against the paper's numbers
(27.21M / 9.64 GMACs vs 106.76M / 25.66 GMACs) and shows what computing the TDDA offset map
once (this package's default) saves against the released per-region recomputation. The paper
counts the released models: DINOv2's 37x37 position table (resampled to 16x16 every forward;
+0.43M params for ViT-S, +0.85M for ViT-B over a 16x16 table), the per-region offsets
(+2.42 GMACs) and, for CricaVPR, the cross-image encoder (+11.03M, +0.15 GMACs). Our adapters
leave out the conv biases that BatchNorm cancels (2,592 params in ViT-S, 5,184 in ViT-B),
below the paper's rounding.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
from torch.nn.attention import sdpa_kernel, SDPBackend
from torch.utils.flop_counter import FlopCounterMode

from vpr_ros.models import cricavpr, d2vpr  # noqa: F401  (registers the D2-VPR models)
from vpr_ros.models.registry import create_model, get_spec

PAPER = {'d2vpr_vits14': (27.21, 9.64), 'cricavpr_vitb14': (106.76, 25.66)}


def count(model: torch.nn.Module, size) -> Dict[str, float]:
    """{'params': all parameters, 'macs': FLOPs/2 of one forward at (h, w) = size}."""
    dev = next(model.parameters()).device
    x = torch.zeros(1, 3, int(size[0]), int(size[1]), device=dev)
    # grad stays enabled: the flop counter's module tracker fails on some modules (e.g.
    # nn.MultiheadAttention) under no_grad; on the meta device this costs nothing.
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
        model(x)
    return {'params': sum(p.numel() for p in model.parameters()),
            'macs': fc.get_total_flops() / 2}


def profile_model(name: str, size: Optional[int] = None, **kw) -> Dict:
    """Build ``name`` (meta device, falling back to CPU) and count it; 'error' on failure."""
    spec = get_spec(name)
    row = {'name': name, 'role': spec.role, 'options': kw}
    if size:
        kw = dict(kw, input_size=(size, size))
    err = ''
    for dev in ('meta', 'cpu'):
        try:
            with torch.device(dev):
                model = create_model(name, **kw).eval()
                hw = (size, size) if size else tuple(model.input_size)
                row.update(count(model, hw), input=list(hw), dim=int(model.dim))
            return row
        except Exception as e:  # noqa: BLE001 - a model that cannot build is reported, not fatal
            err = f'{type(e).__name__}: {str(e).splitlines()[0][:120]}' if str(e) else \
                type(e).__name__
    row['error'] = err
    return row


def d2vpr_rows(size: Optional[int] = None) -> List[Dict]:
    """The cost comparison of the paper, in several configurations."""
    cases = [
        ('d2vpr_vits14', {}, 'default: offsets once, 16x16 position table', None),
        ('d2vpr_vits14', {'repeat_offsets': True}, 'offsets per region (released code)', None),
        ('d2vpr_vits14', {'repeat_offsets': True, 'pos_embed_size': 518},
         'as the paper counts: offsets per region, 37x37 position table', 'd2vpr_vits14'),
        ('cricavpr_vitb14', {}, 'default: no cross-image encoder, 16x16 position table', None),
        ('cricavpr_vitb14', {'cross_image': True, 'pos_embed_size': 518},
         'as the paper counts: cross-image encoder, 37x37 position table', 'cricavpr_vitb14'),
    ]
    rows = []
    for name, kw, note, paper in cases:
        row = profile_model(name, size, **kw)
        row['note'] = note
        if paper and (size or 224) == 224:  # the paper's numbers are at 224
            row['paper_params_m'], row['paper_gmacs'] = PAPER[paper]
        rows.append(row)
    return rows


def _fmt(v, scale, digits=2):
    return '' if v is None else f'{v / scale:.{digits}f}'


def markdown(rows: List[Dict], d2: bool = False) -> str:
    """Rows as a markdown table (with the paper's columns for the D2-VPR table)."""
    head = ['model', 'role', 'input', 'dim', 'params (M)', 'GMACs']
    if d2:
        head = ['model', 'configuration', 'params (M)', 'paper params (M)', 'GMACs',
                'paper GMACs']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in rows:
        if 'error' in r:
            cells = [r['name'], r.get('note', r['role']), f'not built: {r["error"]}'] + \
                [''] * (len(head) - 3)
        elif d2:
            cells = [r['name'], r['note'], _fmt(r['params'], 1e6),
                     _fmt(r.get('paper_params_m'), 1), _fmt(r['macs'], 1e9),
                     _fmt(r.get('paper_gmacs'), 1)]
        else:
            cells = [r['name'], r['role'], 'x'.join(map(str, r['input'])), str(r['dim']),
                     _fmt(r['params'], 1e6), _fmt(r['macs'], 1e9)]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def offset_saving(rows: List[Dict]) -> str:
    """One sentence: MACs of repeated vs once-computed offsets."""
    once, rep = rows[0], rows[1]
    if 'macs' not in once or 'macs' not in rep:
        return ''
    saved = rep['macs'] - once['macs']
    return (f'Computing the offset map once saves {saved / 1e9:.2f} GMACs per image: '
            f'{rep["macs"] / 1e9:.2f} -> {once["macs"] / 1e9:.2f} GMACs '
            f'({100 * saved / rep["macs"]:.1f}% of the released model), identical output.')
