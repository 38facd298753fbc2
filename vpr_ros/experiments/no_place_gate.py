"""Measure a query network's no-place gate: how close real frames and no-place frames come to
its prototypes (vpr_ros.no_place), and the threshold that separates them.

``python -m vpr_ros.experiments.no_place_gate --model NAME --splits DIR [DIR ...] --out DIR``
(or ``--checkpoint FILE``) encodes every database and query image of the VG-layout splits and
a fresh set of no-place frames (another seed than the prototypes, plus pure black, white and
gray), and writes report.json and no_place_gate.png. The suggested threshold is the midpoint
between the highest real frame and the lowest no-place frame; set it as the query_encoder's
``no_place_threshold`` for a network of your own (shipped networks carry theirs).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, Sequence

import numpy as np


def fresh_no_place_frames(size, per_kind: int = 10, seed: int = 99):
    """(frames, kinds) drawn with another seed than the gate's prototypes."""
    from vpr_ros.no_place import KINDS, synthetic_frame
    rng = np.random.default_rng(seed)
    h, w = int(size[0]), int(size[1])
    kinds = [k for k in KINDS for _ in range(per_kind)] + ['black', 'white', 'gray']
    frames = [synthetic_frame(k, size, rng) for k in kinds[:-3]]
    frames += [np.full((h, w, 3), v, np.uint8) for v in (0, 255, 128)]
    return np.stack(frames), kinds


def measure(encoder, splits: Sequence[str], batch: int = 16, progress: bool = True) -> Dict:
    """The report (see the module docstring) for a vpr_ros.inference.Encoder."""
    from tqdm import tqdm
    from vpr_ros.experiments.asym.recall import read_split
    from vpr_ros.no_place import NoPlaceGate
    from vpr_ros.training.gallery_cache import load_rgb
    gate = NoPlaceGate.for_encoder(encoder, 1.0)
    frames, kinds = fresh_no_place_frames(encoder.input_size)
    fake = [gate.similarity(d)[0] for d in encoder.encode(frames)]
    real: Dict[str, list] = {}
    for folder in splits:
        sp = read_split(folder)
        items = [(p, 'database') for p in sp.db_paths] + list(zip(sp.q_paths, sp.q_conditions))
        for i in tqdm(range(0, len(items), batch), desc=Path(folder).parent.name,
                      disable=not progress, leave=False):
            chunk = items[i:i + batch]
            descs = encoder.encode(np.stack([load_rgb(p, encoder.input_size) for p, _ in chunk]))
            for (_, cond), d in zip(chunk, descs):
                real.setdefault(cond, []).append(gate.similarity(d)[0])
    all_real = np.concatenate([np.asarray(v) for v in real.values()])
    lowest_fake = float(min(fake))
    return {
        'network': encoder.name, 'splits': list(splits), 'real_frames': int(len(all_real)),
        'real_by_condition': {c: {'frames': len(v), 'p50': round(float(np.median(v)), 3),
                                  'p99': round(float(np.percentile(v, 99)), 3),
                                  'max': round(float(np.max(v)), 3)} for c, v in real.items()},
        'real_max': round(float(all_real.max()), 3),
        'no_place_min_by_kind': {k: round(float(min(s for s, kk in zip(fake, kinds) if kk == k)),
                                          3) for k in dict.fromkeys(kinds)},
        'no_place_min': round(lowest_fake, 3),
        'separated': bool(lowest_fake > all_real.max()),
        'suggested_threshold': round((lowest_fake + float(all_real.max())) / 2, 2),
        '_real': all_real.tolist(), '_fake': [float(v) for v in fake]}


def plot(report: Dict, path) -> None:
    """Histograms of real and no-place frames' prototype cosine, with the threshold."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.5))
    bins = np.linspace(0, 1, 101)
    ax.hist(report['_real'], bins, alpha=0.7, label=f'real frames ({report["real_frames"]})')
    ax.hist(report['_fake'], bins, alpha=0.7, label=f'no-place frames ({len(report["_fake"])})')
    ax.axvline(report['suggested_threshold'], color='k', ls='--', label='suggested threshold')
    ax.set_xlabel('highest cosine to a no-place prototype')
    ax.set_ylabel('frames')
    ax.set_yscale('log')
    ax.set_title(report['network'])
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--model', default='')
    ap.add_argument('--checkpoint', default='')
    ap.add_argument('--backend', default='torch')
    ap.add_argument('--splits', nargs='+', required=True, help='VG-layout folders')
    ap.add_argument('--out', required=True)
    a = ap.parse_args(argv)
    if not (a.model or a.checkpoint):
        ap.error('give --model or --checkpoint')
    from vpr_ros.config import QueryEncoderConfig
    from vpr_ros.query_pipeline import load_query_encoder
    encoder = load_query_encoder(QueryEncoderConfig(model=a.model, checkpoint=a.checkpoint,
                                                    backend=a.backend))
    report = measure(encoder, a.splits)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(report, out / 'no_place_gate.png')
    public = {k: v for k, v in report.items() if not k.startswith('_')}
    (out / 'report.json').write_text(json.dumps(public, indent=1))
    print(json.dumps(public, indent=1))
    return 0 if report['separated'] else 1


if __name__ == '__main__':
    raise SystemExit(main())
