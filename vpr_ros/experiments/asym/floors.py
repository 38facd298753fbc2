"""The acceptance floors of the asymmetric issue, read off a `train asym` / `evaluate-asym`
report: recall against the gallery and the student (plain, and with the hubness correction),
the training cost against CSD and the latency ratio of the query network to the map model."""
from __future__ import annotations

from typing import Dict, List

from vpr_ros.evaluation.paired import clearly_above, describe
from vpr_ros.experiments.asym.labels import label


def floors(rep: Dict) -> List[Dict]:
    """The issue's acceptance floors, each with the measured values and pass/fail."""
    rec = rep.get('recall', {})
    out = _recall_floors(rec, 'ours_asym', 'gallery_symmetric', 'symmetric_student',
                         rep.get('paired_r1', {}), '',
                         ' (>= 2 points, paired 95% CI above 0)')
    out += _csls_floors(rec, rep.get('paired_r1_csls', {}))
    tr, tm = rep.get('train', {}), rep.get('timing', {})
    if 'ours_asym' in tr and 'csd_asym' in tr:
        o = tm['ours_precompute_s'] + tr['ours_asym']['median_iter_seconds']
        c = tm['csd_precompute_s'] + tr['csd_asym']['median_iter_seconds']
        out.append({'floor': 'precompute + per-iteration cost: ours < CSD',
                    'measured': f'{o:.4f} s vs {c:.4f} s', 'ok': o < c})
    m = rep.get('models', {})
    if 'query' in m and 'gallery' in m:
        for key, name in (('latency_ms', 'torch'), ('torchscript_latency_ms', 'torchscript'),
                          ('onnxruntime_latency_ms', 'onnxruntime')):
            if key in m['query'] and key in m['gallery']:
                r = m['gallery'][key] / m['query'][key]
                out.append({'floor': f'query net >= 10x cheaper in CPU latency ({name})',
                            'measured': f'{r:.1f}x', 'ok': r >= 10.0})
    return out


def _recall_floors(rec: Dict, ours: str, gallery: str, student: str, paired: Dict,
                   gallery_note: str, student_note: str) -> List[Dict]:
    """The two recall floors of ``ours``: 90% of ``gallery``, clearly above ``student`` (its
    paired interval above 0 when ``paired`` holds it, else 2 points)."""
    out = []
    if ours in rec and gallery in rec:
        a, g = rec[ours]['all']['R@1'], rec[gallery]['all']['R@1']
        out.append({'floor': f'asym R@1 >= 90% of gallery R@1{gallery_note}',
                    'measured': f'{a:.1f} vs {g:.1f} ({100 * a / max(g, 1e-9):.0f}%)',
                    'ok': a >= 0.9 * g})
    if ours in rec and student in rec:
        a, s, pair = rec[ours]['all']['R@1'], rec[student]['all']['R@1'], paired.get(student)
        out.append({'floor': f'asym R@1 clearly above the symmetric student{student_note}',
                    'measured': f'{a:.1f} vs {s:.1f}' + (f': {describe(pair)}' if pair else ''),
                    'ok': clearly_above(pair) if pair else a >= s + 2.0})
    return out


def _csls_floors(rec: Dict, paired: Dict) -> List[Dict]:
    """The two recall floors for ours with the hubness correction, each against the better of
    the other system's plain and corrected rows (the correction is open to every system)."""
    if 'ours_asym_csls' not in rec:
        return []

    def best(base):
        have = [t for t in (base, base + '_csls') if t in rec]
        return max(have, key=lambda t: rec[t]['all']['R@1']) if have else ''
    gal, stu = best('gallery_symmetric'), best('symmetric_student')
    return _recall_floors(rec, 'ours_asym_csls', gal, stu, paired,
                          ' (both with their better search, ours with the hubness correction; '
                          f'gallery: {label(gal)})',
                          f' (both with their better search; student: {label(stu)})')
