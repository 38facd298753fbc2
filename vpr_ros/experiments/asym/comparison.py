"""The comparison of `vpr-ros train asym`: ours, its ablations and the baselines trained,
evaluated on the held-out towns, profiled and written as one report."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from vpr_ros.training.asym import AsymTrainConfig
from vpr_ros.experiments.asym.inputs import (
    hubness_and_distractors, load_gallery_model, load_student, run_config, shared_warm_start,
    training_rows, whitened_data)


def run_comparison(cfg: AsymTrainConfig) -> dict:
    """Train ours and the baselines, evaluate, profile and write the report into cfg.out."""
    import copy
    import time
    import numpy as np
    import torch
    from vpr_ros.experiments.asym import recall as ev
    from vpr_ros.training import asym, csd
    from vpr_ros.experiments.asym.heldout import parse_fractions
    from vpr_ros.experiments.asym.report import write_report
    from vpr_ros.training.memory_bank import MemoryBank
    from vpr_ros.training.places import place_subset
    from vpr_ros.training.whitening import fold, whitened_projection
    from vpr_ros.training.gallery_cache import gallery_fingerprint
    if cfg.warm_start_mode != 'forward' and (not cfg.start_from_student
                                             or cfg.gallery_whiten):
        raise SystemExit(f'vpr-ros train asym: --warm-start-mode {cfg.warm_start_mode} maps '
                         "a trained student's descriptors into the gallery's space; it needs "
                         '--start-from-student true and the raw gallery space '
                         '(no --gallery-whiten)')
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = cfg.cache_dir or str(out / 'cache')
    gallery = load_gallery_model(cfg)
    gname, gdim = cfg.gallery_model, int(gallery.dim)
    rows, feats, gmeta = training_rows(cfg, gallery, cache)
    gfp = gmeta.get('weights_fingerprint') or gallery_fingerprint(gallery)
    images = asym.load_query_images(rows.paths, cfg.input_size, cfg.workers, cfg.progress)
    data = asym.TrainData(rows.paths, rows.places, images, feats, rows.conditions,
                          _degenerate_bank(cfg, gallery))
    hub, distractors = hubness_and_distractors(cfg, rows, feats, cfg.growth_distractors) \
        if cfg.eval else (None, None)
    fractions = parse_fractions(cfg.growth_fractions)  # a bad value fails before training
    rep = {'config': dataclasses.asdict(cfg), 'gallery_features': {
        k: gmeta[k] for k in ('model', 'input_size', 'dim', 'num_images', 'extract_seconds',
                              'cached')}, 'train': {}, 'models': {}, 'timing': {}}
    white, ours_data = whitened_data(cfg, data)
    if white:
        rep['whitening'] = white.summary()
    bank = MemoryBank.from_features(ours_data.gallery, rows.places)
    rep['timing']['ours_precompute_s'] = bank.build_seconds + (white.fit_seconds if white else 0)
    untrained = asym.make_query_model(cfg, gdim, gallery).eval()
    ours = dict(method='asym', bank=bank, data=ours_data, white=white)
    runs = {'ours_asym': dict(ours)}
    if cfg.ablate_gamma0:
        runs['ours_gamma0'] = dict(ours, gamma=0.0)
    if cfg.ablate_centroid and cfg.centroid_weight:
        runs['ours_no_centroid'] = dict(ours, centroid_weight=0.0)
    if cfg.ablate_ramp and cfg.gamma_schedule != 'ramp':
        runs['ours_ramp'] = dict(ours, schedule='ramp')
    base = [b.strip() for b in cfg.baselines.split(',') if b.strip()]
    if cfg.start_from_student and 'symmetric' not in base:
        raise SystemExit('vpr-ros train asym: --start-from-student needs the symmetric '
                         'baseline (--baselines symmetric,...)')
    if 'symmetric' in base:
        runs['symmetric_student'] = dict(method='symmetric')
        if cfg.start_from_student:  # trained first: every other run starts from it
            runs = {'symmetric_student': runs.pop('symmetric_student'), **runs}
    if 'csd' in base:
        anchors, secs = csd.knn_neighbours(feats, cfg.csd_k, cfg.threads)
        rep['timing']['csd_precompute_s'] = secs
        runs['csd_asym'] = dict(method='csd', anchors=anchors)
    if 'distill' in base:  # plain distillation: MSE to the gallery descriptor of each image
        runs['distill_asym'] = dict(method='distill')
    for frac in [float(f) for f in cfg.bank_fractions.split(',') if f.strip()]:
        # its own whitening too: the other places' gallery features stay out of this run
        sub_white, sub = whitened_data(cfg, data.subset(place_subset(rows.places, frac, cfg.seed)))
        sub_bank = MemoryBank.from_features(sub.gallery, sub.labels)
        name = f'bank{int(frac * 100)}'
        if cfg.start_from_student:  # its own student on the same places: the bank alone varies
            runs[f'symmetric_{name}'] = dict(method='symmetric', data=sub, start=None)
        runs[f'ours_{name}'] = dict(method='asym', bank=sub_bank, data=sub, white=sub_white,
                                    start=f'symmetric_{name}' if cfg.start_from_student else None)
    trained, warm_starts = {}, {}
    if cfg.student_checkpoint and 'symmetric_student' in runs:
        runs.pop('symmetric_student')
        trained['symmetric_student'], rep['train']['symmetric_student'] = \
            load_student(cfg, gdim, out / 'symmetric_student.pt')
    for tag, kw in runs.items():
        run_data = kw.pop('data', data)
        start = kw.pop('start', 'symmetric_student' if cfg.start_from_student
                       and tag != 'symmetric_student' else None)
        model = copy.deepcopy(trained[start]) if start else \
            asym.make_query_model(cfg, gdim, gallery)
        whiten = kw.pop('white', None)
        if whiten:
            whitened_projection(model, whiten.dim)
        if kw['method'] in ('asym', 'csd', 'distill'):
            kw['warm'] = shared_warm_start(model, run_data, cfg, warm_starts)
        run_cfg = run_config(cfg, kw['method'], start)
        if kw.get('schedule'):
            run_cfg = dataclasses.replace(run_cfg, gamma_schedule=kw.pop('schedule'))
        model, hist = asym.train_query_network(run_cfg, run_data, tag=tag, model=model, **kw)
        if whiten:
            fold(model, whiten)
            hist['whitening'] = whiten.summary()
        if kw.get('bank') is not None:
            hist['bank'] = {'places': len(kw['bank']), 'bytes': kw['bank'].nbytes(),
                            'build_s': kw['bank'].build_seconds}
        asym.save_query_checkpoint(str(out / f'{tag}.pt'), model, cfg, gname, gdim, hist,
                                   kw['method'], gfp)
        trained[tag], rep['train'][tag] = model, hist
        key = {'ours_asym': 'ours_precompute_s', 'csd_asym': 'csd_precompute_s'}.get(tag)
        if key and hist.get('warm_start'):  # the least-squares start is precompute too
            rep['timing'][key] += hist['warm_start']['seconds']
    if cfg.start_from_student:  # trained here or loaded, its cost is shared by every run
        rep['timing']['shared_student_start_s'] = \
            rep['train']['symmetric_student'].get('train_seconds', 0.0)
    if 'd2vpr' in base:
        from vpr_ros.experiments.asym.d2vpr import train_d2vpr
        d2_models, d2_hists = train_d2vpr(cfg, data, gdim)
        for tag, model in d2_models.items():
            asym.save_query_checkpoint(str(out / f'{tag}.pt'), model, cfg, gname, gdim,
                                       d2_hists[tag], 'distill', gfp)
            trained[tag], rep['train'][tag] = model, d2_hists[tag]
    if cfg.eval:
        rep.update(_evaluate(cfg, gallery, cache, trained, untrained, distractors, fractions,
                             hub, sorted(set(rows.conditions))))
    mult = [int(m) for m in cfg.cost_growth.split(',') if m.strip()]
    if mult:
        from vpr_ros.experiments.asym.cost import precompute_growth
        rep['cost_growth'] = precompute_growth(feats, rows.places, mult, cfg.csd_k, cfg.tau,
                                               cfg.gamma, cfg.batch_size, cfg.threads,
                                               cfg.seed, cfg.centroid_weight)
    qm = trained['ours_asym']
    if hub is not None:  # what the matcher needs to search a map with ours the same way
        from vpr_ros.hubness import save_reference
        save_reference(out / 'ours_asym.hubness.npz', hub.of('ours_asym', trained),
                       qm.name, gname, hub.k)
        rep['hubness_reference'] = str(out / 'ours_asym.hubness.npz')
    nets = {'query': qm, 'gallery': gallery}
    if 'd2vpr' in trained:
        nets['d2vpr'] = trained['d2vpr']
    rep['models'] = _profile(nets, cfg, ev, rep)
    if cfg.export_onnx:
        from vpr_ros.models.checkpoint import model_meta
        from vpr_ros.models.onnx_export import export_onnx, parity
        meta = model_meta(qm, {'encoder': gname, 'dim': gdim})
        t0 = time.perf_counter()
        data_onnx = export_onnx(qm, meta, str(out / 'ours_asym.onnx'))
        rep['onnx'] = {'path': str(out / 'ours_asym.onnx'), 'parity_max_abs_diff':
                       parity(qm, data_onnx), 'export_s': time.perf_counter() - t0}
    rep['num_train_places'] = int(len(np.unique(rows.places)))
    rep['num_train_images'] = len(rows.paths)
    write_report(rep, out)
    return rep


def _degenerate_bank(cfg: AsymTrainConfig, gallery):
    """The no-place frames of ``--degenerate-frames`` with the gallery's descriptors of them
    (None when off); built once, shared by every run."""
    if cfg.degenerate_frames <= 0:
        return None
    from vpr_ros.training.degenerate_frames import build_bank
    return build_bank(gallery, cfg.input_size, seed=cfg.seed)


def _profile(nets: dict, cfg: AsymTrainConfig, ev, rep: dict) -> dict:
    """Params, FLOPs and torch latency of ``nets`` side by side, plus onnxruntime latency of
    those that export (an export failure is recorded in the report, not fatal)."""
    prof = ev.profile_models(nets, cfg.latency_runs, cfg.threads)
    errors = {}
    try:
        for k, v in ev.onnx_latency(nets, cfg.latency_runs, cfg.threads, errors).items():
            prof[k]['onnxruntime_latency_ms'] = v
    except ImportError as e:  # onnxruntime is optional for the comparison
        errors['all'] = str(e)
    if errors:
        rep['onnx_latency_error'] = errors
    return prof


def _evaluate(cfg: AsymTrainConfig, gallery, cache: str, trained: dict, untrained,
              distractors, fractions, hub=None, seen=()) -> dict:
    """Recall of every system on the held-out split(s) of ``cfg.eval`` (pooled, each query
    against its own split's DB; also per split) and the map-growth rows."""
    from vpr_ros.experiments.asym.heldout import cached_features_fn, evaluate_heldout
    folders = [f.strip() for f in cfg.eval.split(',') if f.strip()]
    return evaluate_heldout(folders, cached_features_fn(gallery, cache, cfg), trained,
                            untrained, cfg.eval_radius_m, distractors, fractions, cfg.seed,
                            hub, seen)
