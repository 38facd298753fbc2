"""Train an asymmetric query network (AsymVPR) against a frozen gallery model, with baselines.

``vpr-ros train asym --gallery-model G --query-model Q --data PATH --out DIR [--eval VG]``
trains ours (and, per --baselines, the symmetric student and CSD), evaluates them on a held-out
split and writes report.json / report.md / PNG plots into --out. ``--preset quick`` renders a
small training town and a held-out town (different seeds) when --data / --eval are not given.
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path

from vpr_ros.training.asym import AsymTrainConfig

PRESETS = {
    # The end-to-end comparison in minutes on 2 CPU cores (see README / the report).
    'quick': dict(epochs=5, bank_fractions='0.5', latency_runs=20,
                  world_places=100, heldout_places=60),
    'full': dict(epochs=10, bank_fractions='0.25,0.5', latency_runs=50,
                 world_places=220, heldout_places=150),
}
WORLD_SEEDS = (101, 202)  # training town, held-out town: different seeds, disjoint places


def _flag_type(tp):
    if tp is bool:
        return lambda s: s.lower() in ('1', 'true', 'yes', 'on')
    return tp


def add_dataclass_arguments(parser, cls, skip=()) -> None:
    """One --flag per dataclass field (default SUPPRESS: only given flags reach the args)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp = hints[f.name]
        kw = dict(default=argparse.SUPPRESS, dest=f.name, help=f'(default: {f.default!r})')
        if typing.get_origin(tp) in (tuple, typing.Tuple):
            kw.update(type=int, nargs='+')
        else:
            kw['type'] = _flag_type(tp)
        parser.add_argument('--' + f.name.replace('_', '-'), **kw)


def add_arguments(parser) -> None:
    """Options of ``vpr-ros train asym`` (generated from AsymTrainConfig)."""
    add_dataclass_arguments(parser, AsymTrainConfig)
    parser.add_argument('--preset', choices=sorted(PRESETS), default='',
                        help='settings and, without --data/--eval, generated towns')


def config_from_args(args) -> tuple:
    """(AsymTrainConfig, preset dict): dataclass defaults <- preset <- explicit flags."""
    preset = dict(PRESETS.get(getattr(args, 'preset', '') or '', {}))
    names = {f.name for f in dataclasses.fields(AsymTrainConfig)}
    values = {k: v for k, v in preset.items() if k in names}
    values.update({k: v for k, v in vars(args).items() if k in names})
    for k in ('input_size', 'gallery_input_size', 'd2vpr_input_size'):
        if k in values and len(values[k]) == 1:
            values[k] = (values[k][0], values[k][0])
    return AsymTrainConfig(**values), preset


def generate_towns(out: Path, train_places: int, heldout_places: int, progress: bool = True):
    """A training town (GSV layout, 4 conditions) and a held-out town (VG layout) from other
    seeds; the held-out database is day, its queries day/dusk/night/rain from shifted views."""
    from vpr_ros.world.generate import WorldConfig, generate_world
    train, held = out / f'train_s{WORLD_SEEDS[0]}', out / f'heldout_s{WORLD_SEEDS[1]}'
    if not (train / 'Dataframes').is_dir():
        generate_world(WorldConfig(seed=WORLD_SEEDS[0], out=str(train), places=train_places,
                                   formats=('gsv',), city='TrainTown', progress=progress))
    if not (held / 'test' / 'queries').is_dir():
        generate_world(WorldConfig(seed=WORLD_SEEDS[1], out=str(held), places=heldout_places,
                                   formats=('vg',), progress=progress,
                                   conditions=('day', 'day', 'dusk', 'night', 'rain')))
    return train, held / 'test'


def run(args) -> int:
    """Entry point of ``vpr-ros train asym``."""
    cfg, preset = config_from_args(args)
    if preset and (not cfg.data or not cfg.eval):
        train, held = generate_towns(Path(cfg.out) / 'worlds', preset['world_places'],
                                     preset['heldout_places'], cfg.progress)
        cfg = dataclasses.replace(cfg, data=cfg.data or str(train), eval=cfg.eval or str(held))
    if not cfg.data:
        raise SystemExit('vpr-ros train asym: --data is required (or --preset quick)')
    report = run_comparison(cfg)
    print(f'report written to {Path(cfg.out) / "report.md"}')
    ours = report.get('recall', {}).get('ours_asym', {}).get('all')
    if ours:
        print(f'ours (asymmetric) R@1 on the held-out split: {ours["R@1"]:.1f}%')
    return 0


def load_gallery_model(cfg: AsymTrainConfig):
    """The frozen gallery model of ``cfg`` (registered name, weights file or checkpoint)."""
    from vpr_ros.models.checkpoint import is_checkpoint
    from vpr_ros.models.runtime import build_torch_model
    ckpt = cfg.gallery_checkpoint
    size = tuple(cfg.gallery_input_size) or None
    if ckpt and is_checkpoint(ckpt):
        return build_torch_model(checkpoint=ckpt, input_size=size)[0]
    return build_torch_model(model=cfg.gallery_model, weights=ckpt, input_size=size)[0]


def run_comparison(cfg: AsymTrainConfig) -> dict:
    """Train ours and the baselines, evaluate, profile and write the report into cfg.out."""
    import copy
    import time
    import numpy as np
    import torch
    from vpr_ros.training import asym, csd, evaluate_asym as ev
    from vpr_ros.training.asym_heldout import parse_fractions, read_distractors
    from vpr_ros.training.asym_report import write_report
    from vpr_ros.training.memory_bank import MemoryBank
    from vpr_ros.training.places import place_subset
    from vpr_ros.training.whitening import fold, whitened_projection
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
    images = asym.load_query_images(rows.paths, cfg.input_size, cfg.workers, cfg.progress)
    data = asym.TrainData(rows.paths, rows.places, images, feats, rows.conditions)
    distractors = read_distractors(cfg.growth_distractors, rows.paths, feats) \
        if cfg.eval else None
    fractions = parse_fractions(cfg.growth_fractions)  # a bad value fails before training
    rep = {'config': dataclasses.asdict(cfg), 'gallery_features': {
        k: gmeta[k] for k in ('model', 'input_size', 'dim', 'num_images', 'extract_seconds',
                              'cached')}, 'train': {}, 'models': {}, 'timing': {}}
    white, ours_data = _whitened(cfg, data)
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
    for frac in [float(f) for f in cfg.bank_fractions.split(',') if f.strip()]:
        # its own whitening too: the other places' gallery features stay out of this run
        sub_white, sub = _whitened(cfg, data.subset(place_subset(rows.places, frac, cfg.seed)))
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
        if kw['method'] in ('asym', 'csd'):
            kw['warm'] = _shared_warm_start(model, run_data, cfg, warm_starts)
        model, hist = asym.train_query_network(_run_config(cfg, kw['method'], start), run_data,
                                               tag=tag, model=model, **kw)
        if whiten:
            fold(model, whiten)
            hist['whitening'] = whiten.summary()
        if kw.get('bank') is not None:
            hist['bank'] = {'places': len(kw['bank']), 'bytes': kw['bank'].nbytes(),
                            'build_s': kw['bank'].build_seconds}
        asym.save_query_checkpoint(str(out / f'{tag}.pt'), model, cfg, gname, gdim, hist,
                                   kw['method'])
        trained[tag], rep['train'][tag] = model, hist
        key = {'ours_asym': 'ours_precompute_s', 'csd_asym': 'csd_precompute_s'}.get(tag)
        if key and hist.get('warm_start'):  # the least-squares start is precompute too
            rep['timing'][key] += hist['warm_start']['seconds']
    if cfg.start_from_student:  # trained here or loaded, its cost is shared by every run
        rep['timing']['shared_student_start_s'] = \
            rep['train']['symmetric_student'].get('train_seconds', 0.0)
    if 'd2vpr' in base:
        from vpr_ros.training.asym_d2vpr import train_d2vpr
        d2_models, d2_hists = train_d2vpr(cfg, data, gdim)
        for tag, model in d2_models.items():
            asym.save_query_checkpoint(str(out / f'{tag}.pt'), model, cfg, gname, gdim,
                                       d2_hists[tag], 'distill')
            trained[tag], rep['train'][tag] = model, d2_hists[tag]
    if cfg.eval:
        rep.update(_evaluate(cfg, gallery, cache, trained, untrained, distractors, fractions))
    mult = [int(m) for m in cfg.cost_growth.split(',') if m.strip()]
    if mult:
        from vpr_ros.training.asym_cost import precompute_growth
        rep['cost_growth'] = precompute_growth(feats, rows.places, mult, cfg.csd_k, cfg.tau,
                                               cfg.gamma, cfg.batch_size, cfg.threads,
                                               cfg.seed, cfg.centroid_weight)
    qm = trained['ours_asym']
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


def training_rows(cfg: AsymTrainConfig, gallery, cache: str):
    """(rows, gallery features, manifest) of the training data: ``cfg.data`` may list several
    datasets (comma-separated); each keeps its own places and its own gallery-feature cache
    entry, so adding a dataset extracts only that dataset's features."""
    import numpy as np
    from vpr_ros.training.gallery_cache import cached_gallery_features
    from vpr_ros.training.places import concat_rows, read_rows
    parts, feats, metas = [], [], []
    for root in [d.strip() for d in cfg.data.split(',') if d.strip()]:
        rows = read_rows(root, cell_m=cfg.place_cell_m, yaw_bins=cfg.place_yaw_bins)
        f, meta = cached_gallery_features(gallery, rows.paths, cache, cfg.gallery_model,
                                          cfg.gallery_checkpoint, progress=cfg.progress,
                                          backend=cfg.gallery_backend, threads=cfg.threads)
        parts.append(rows)
        feats.append(f)
        metas.append(meta)
    meta = dict(metas[0], num_images=sum(m['num_images'] for m in metas),
                extract_seconds=sum(m['extract_seconds'] for m in metas),
                cached=all(m['cached'] for m in metas))
    return concat_rows(parts), np.concatenate(feats), meta


def _whitened(cfg: AsymTrainConfig, data):
    """(whitening or None, the training data ours trains on): with ``cfg.gallery_whiten`` the
    gallery features are PCA-whitened, fitted on ``data``'s own features; the baselines keep
    the raw ones."""
    if not cfg.gallery_whiten:
        return None, data
    from vpr_ros.training.whitening import fit_whitening
    white = fit_whitening(data.gallery, cfg.gallery_whiten)
    return white, dataclasses.replace(data, gallery=white.apply(data.gallery))


def _run_config(cfg: AsymTrainConfig, method: str, start) -> AsymTrainConfig:
    """``cfg`` of one training run: ours (and its ablations) fine-tuning a student train at
    ``from_student_lr_scale`` times lr and lr_min. Measured at 72x96 from a 12-epoch student:
    2x gave ours +0.8 to +1.8 R@1 over 1x on three runs (README), 0.3x lost 4.8. The student,
    CSD and ours from the pretrained weights keep lr."""
    if method != 'asym' or not start or cfg.from_student_lr_scale == 1.0:
        return cfg
    k = cfg.from_student_lr_scale
    return dataclasses.replace(cfg, lr=cfg.lr * k, lr_min=cfg.lr_min * k)


def load_student(cfg: AsymTrainConfig, gdim: int, copy_to: Path):
    """(model, history) of ``cfg.student_checkpoint``, a symmetric student of another run with
    this run's query model, input size and descriptor width; copied to ``copy_to`` so the run
    folder holds every checkpoint its report names."""
    import shutil
    from vpr_ros.models.checkpoint import load_checkpoint
    path = cfg.student_checkpoint
    model, meta = load_checkpoint(path)
    extra = meta.get('extra') or {}
    want = {'method': 'symmetric', 'model': cfg.query_model,
            'input_size': list(cfg.input_size), 'dim': gdim}
    got = {'method': extra.get('method'), 'model': meta.get('name'),
           'input_size': list(model.input_size), 'dim': int(model.dim)}
    bad = {k: (got[k], v) for k, v in want.items() if got[k] != v}
    if bad:
        raise SystemExit(f'vpr-ros train asym: --student-checkpoint {path!r} does not fit this '
                         'run: ' + ', '.join(f'{k} {g!r} (this run: {w!r})'
                                             for k, (g, w) in bad.items()))
    hist = dict(extra.get('history') or {}, loaded_from=str(path))
    if Path(path).resolve() != copy_to.resolve():
        shutil.copyfile(path, copy_to)
    return model.eval(), hist


def _shared_warm_start(model, data, cfg: AsymTrainConfig, done: dict) -> dict:
    """Warm-start ``model``'s projection once per training set and copy it to the next runs
    of the same set: ours and CSD start from one projection, and both count its time."""
    from vpr_ros.training.asym import warm_start_projection
    proj = getattr(model, 'projection', None)
    if id(data) in done and proj is not None:
        state, info = done[id(data)]
        proj.load_state_dict(state)
        return info
    info = warm_start_projection(model, data, cfg.warm_start, cfg.warm_start_ridge, cfg.seed,
                                 cfg.warm_start_mode)
    if proj is not None:
        done[id(data)] = ({k: v.clone() for k, v in proj.state_dict().items()}, info)
    return info


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
              distractors, fractions) -> dict:
    """Recall of every system on the held-out split(s) of ``cfg.eval`` (pooled, each query
    against its own split's DB; also per split) and the map-growth rows."""
    from vpr_ros.training.asym_heldout import cached_features_fn, evaluate_heldout
    folders = [f.strip() for f in cfg.eval.split(',') if f.strip()]
    return evaluate_heldout(folders, cached_features_fn(gallery, cache, cfg), trained,
                            untrained, cfg.eval_radius_m, distractors, fractions, cfg.seed)
