"""Ship a trained query network of a `vpr-ros train asym` run as packaged weights.

``export_query(checkpoint, name)`` copies the weights of a run's query checkpoint (ours, CSD or
plain distillation: whichever measured best) into the registered packaged query network
``name`` (vpr_ros.models.packaged.QUERY_PACKAGED) and writes ``vpr_ros/weights/<name>
.safetensors`` in float16 with ``compatible_with`` = the packaged gallery, including the
fingerprint of its weights, so maps built with that gallery accept it. ``card(...)`` gathers
the numbers of the card's JSON from the run's report.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

COST_KEYS = ('model', 'input_size', 'params_M', 'gflops', 'latency_ms', 'onnxruntime_latency_ms')


def export_query(checkpoint: str, name: str, out: Optional[str] = None,
                 extra: Optional[Dict] = None) -> Dict:
    """Write ``checkpoint``'s weights as the packaged query network ``name`` (float16);
    returns the metadata written. The checkpoint must have been trained against ``name``'s
    gallery (its ``compatible_with.encoder``)."""
    from vpr_ros.models.checkpoint import gallery_compat, load_checkpoint, save_checkpoint
    from vpr_ros.models.packaged import QUERY_PACKAGED, WEIGHTS_DIR
    from vpr_ros.models.registry import create_model
    entry = QUERY_PACKAGED[name]
    model, meta = load_checkpoint(checkpoint)
    trained_for = (meta.get('compatible_with') or {}).get('encoder')
    if trained_for != entry.gallery:
        raise ValueError(f'{checkpoint} was trained against {trained_for!r}, not the packaged '
                         f'gallery {entry.gallery!r} of {name}')
    if tuple(model.input_size) != tuple(entry.input_size):
        raise ValueError(f'{checkpoint} runs at {tuple(model.input_size)}, {name} at '
                         f'{entry.input_size}')
    target = create_model(name, pretrained=False)
    target.load_state_dict(model.state_dict())
    gallery = create_model(entry.gallery, pretrained=True)
    info = dict(extra or {}, compatible_with=gallery_compat(gallery),
                source_checkpoint=str(checkpoint),
                method=(meta.get('extra') or {}).get('method'))
    path = out or str(WEIGHTS_DIR / entry.file)
    return save_checkpoint(path, target.half(), extra=info)


def card(report: Dict, tag: str, by_seen: Dict) -> Dict:
    """The evaluation part of a card: R@1 per condition of ``tag``, the gallery and the student
    on the run's held-out towns, seen vs unseen with ours' paired intervals, and the cost."""
    rec = report.get('recall', {})
    keep = [k for k in (tag, 'gallery_symmetric', 'symmetric_student', 'ours_asym',
                        'csd_asym', 'distill_asym') if k in rec]
    models = report.get('models', {})
    return {
        'recall': {k: {c: {'R@1': round(v['R@1'], 2), 'R@5': round(v['R@5'], 2)}
                       for c, v in rec[k].items()} for k in dict.fromkeys(keep)},
        'seen_unseen': {g: {'conditions': v['conditions'], 'queries': v['queries'],
                            'R@1': {k: round(r, 2) for k, r in v['R@1'].items() if k in keep},
                            'paired_ours_minus': {
                                k: {x: round(d[x], 2) if x != 'p' and isinstance(d[x], float)
                                    else d[x] for x in ('diff', 'ci_low', 'ci_high', 'p',
                                                        'resampled')}
                                for k, d in v['paired'].items() if k in keep}}
                        for g, v in by_seen.items()},
        'cost': {k: {x: models[k].get(x) for x in COST_KEYS}
                 for k in ('query', 'gallery') if k in models},
    }


def weights_size(name: str) -> int:
    """Bytes of the packaged file of ``name``."""
    from vpr_ros.models.packaged import QUERY_PACKAGED, WEIGHTS_DIR
    return Path(WEIGHTS_DIR / QUERY_PACKAGED[name].file).stat().st_size
