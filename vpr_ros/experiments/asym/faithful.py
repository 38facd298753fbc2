"""The faithful AsymVPR protocol (issue 35): the paper's premise on vpr_ros's synthetic towns.

The gallery (map) model knows conditions the query network never sees: the query network is
trained from ImageNet weights on new towns rendered only in the SEEN conditions (day, overcast,
dusk), then tested on held-out towns whose day map is searched with queries in the seen
condition (dusk) and in UNSEEN ones (fog, night, rain). Ours (the paper's loss from the ImageNet
start), its gamma 0 and ISDA-ramp ablations, CSD, plain distillation and the symmetric student
train the same epochs; the report splits recall into seen vs unseen with paired,
place-resampled intervals, one row per training seed.

``vpr-ros train asym --preset faithful`` (full size) or ``--preset faithful-small`` (this
machine) renders the towns (``render_towns``) unless --data / --eval are given, and
``run_faithful`` runs one comparison per seed into ``<out>/seed<N>`` and writes
``faithful.json`` / ``faithful.md`` into ``<out>``.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

SEEN = ('day', 'overcast', 'dusk')                     # query-training conditions
HELDOUT = ('day', 'dusk', 'fog', 'night', 'rain')      # day map; dusk seen, the rest unseen
KEY_PAIRS = (('ours_asym', 'symmetric_student'), ('ours_asym', 'ours_gamma0'),
             ('ours_asym', 'ours_ramp'), ('ours_asym', 'csd_asym'),
             ('ours_asym', 'distill_asym'), ('ours_asym', 'gallery_symmetric'))


def render_towns(out: Path, query_seeds: Sequence[int], heldout_seeds: Sequence[int],
                 query_places: int, query_images: int, heldout_places: int,
                 progress: bool = True) -> Tuple[str, str]:
    """(--data, --eval) of the protocol: GSV-layout query towns in the seen conditions and
    VG-layout held-out towns (day database, one query per place and other condition); towns
    already on disk are kept."""
    from vpr_ros.world.generate import WorldConfig, generate_world
    data, held = [], []
    for s in query_seeds:
        town = out / f'query_s{s}'
        if not (town / 'Dataframes').is_dir():
            generate_world(WorldConfig(seed=s, out=str(town), places=query_places,
                                       formats=('gsv',), city=f'Q{s}', conditions=SEEN,
                                       images_per_place=query_images, progress=progress))
        data.append(str(town))
    for s in heldout_seeds:
        town = out / f'heldout_s{s}'
        if not (town / 'test' / 'queries').is_dir():
            generate_world(WorldConfig(seed=s, out=str(town), places=heldout_places,
                                       formats=('vg',), conditions=HELDOUT, progress=progress))
        held.append(str(town / 'test'))
    return ','.join(data), ','.join(held)


def parse_seeds(text: str, default: int) -> List[int]:
    """'0,1,2' -> [0, 1, 2]; '' -> [default]."""
    seeds = [int(s) for s in str(text).split(',') if s.strip()]
    return seeds or [int(default)]


def run_faithful(cfg) -> Dict:
    """One comparison per seed of ``cfg.seeds`` (an AsymTrainConfig) into <out>/seed<N>
    (sharing one gallery-feature cache), then the seen/unseen summary into <out> over every
    seed folder finished there (so seeds may run as parallel processes, ``--seeds N`` each)."""
    from vpr_ros.experiments.asym.comparison import run_comparison
    out = Path(cfg.out)
    cache = cfg.cache_dir or str(out / 'cache')
    reports = {}
    for s in parse_seeds(cfg.seeds, cfg.seed):
        run = dataclasses.replace(cfg, seed=s, out=str(out / f'seed{s}'), cache_dir=cache)
        reports[s] = run_comparison(run)
    # seeds run by other processes into the same folder (one seed each, in parallel) count too
    reports = {**finished_reports(out), **reports}
    summary = summarize(reports)
    (out / 'faithful.json').write_text(json.dumps(summary, indent=1))
    (out / 'faithful.md').write_text(markdown(summary, cfg))
    return summary


def finished_reports(out: Path) -> Dict[int, Dict]:
    """{seed: report} of every ``<out>/seed<N>/report.json`` already written."""
    found = {}
    for path in sorted(Path(out).glob('seed*/report.json')):
        tail = path.parent.name[len('seed'):]
        if tail.isdigit():
            found[int(tail)] = json.loads(path.read_text())
    return dict(sorted(found.items()))


def summarize(reports: Dict[int, Dict]) -> Dict:
    """{'seeds': {seed: {'seen'|'unseen': {'R@1', 'paired', 'queries', 'conditions'}}},
    'mean_r1': {group: {system: mean over seeds}}, 'wins': {pair: seeds whose interval of
    ours minus the other on unseen lies above 0}} from each seed's ``by_seen``."""
    seeds = {s: r.get('by_seen', {}) for s, r in reports.items()}
    mean, wins = {}, {}
    for group in ('seen', 'unseen'):
        rows = [b[group] for b in seeds.values() if group in b]
        if not rows:
            continue
        systems = rows[0]['R@1']
        mean[group] = {k: sum(r['R@1'][k] for r in rows) / len(rows) for k in systems}
    for a, b in KEY_PAIRS:
        ups = [s for s, v in seeds.items()
               if b in v.get('unseen', {}).get('paired', {})
               and v['unseen']['paired'][b]['ci_low'] > 0]
        if any(b in v.get('unseen', {}).get('paired', {}) for v in seeds.values()):
            wins[f'{a} - {b}'] = ups
    return {'seeds': {str(s): v for s, v in seeds.items()}, 'mean_r1': mean, 'wins': wins}


def markdown(summary: Dict, cfg=None) -> str:
    """faithful.md: per seed and group, R@1 of every system and ours minus each other system
    with its paired place-resampled 95% interval."""
    from vpr_ros.experiments.asym.labels import label
    lines = ['# AsymVPR, faithful protocol: seen vs unseen conditions', '']
    if cfg is not None:
        lines += [f'gallery `{cfg.gallery_model}` (frozen), query `{cfg.query_model}` at '
                  f'{tuple(cfg.input_size)} from ImageNet weights, {cfg.epochs} epochs for '
                  f'every run, tau {cfg.tau}, gamma {cfg.gamma} ({cfg.gamma_schedule}), '
                  f'centroid term weight {cfg.centroid_weight} (0 = the paper\'s loss); '
                  f'train `{cfg.data}`; held-out `{cfg.eval}`.', '']
    for seed, groups in summary['seeds'].items():
        for group, g in groups.items():
            lines += [f'## seed {seed}, {group} conditions ({", ".join(g["conditions"])}; '
                      f'{g["queries"]} queries)', '', '| system | R@1 | ours minus it | 95% CI '
                      '(places resampled) | p |', '|---|---|---|---|---|']
            for k, r in g['R@1'].items():
                d = g['paired'].get(k)
                cells = (f'{d["diff"]:+.1f} | {d["ci_low"]:+.1f} to {d["ci_high"]:+.1f} | '
                         f'{d["p"]:.2g}') if d else '- | - | -'
                lines.append(f'| {label(k)} | {r:.1f} | {cells} |')
            lines.append('')
    for group, m in summary['mean_r1'].items():
        lines += [f'Mean R@1 over {len(summary["seeds"])} seed(s), {group}: '
                  + ', '.join(f'{label(k)} {v:.1f}' for k, v in m.items()) + '.', '']
    for pair, ups in summary['wins'].items():
        lines.append(f'- {pair}, unseen: interval above 0 in {len(ups)} of '
                     f'{len(summary["seeds"])} seed(s)' + (f' ({ups})' if ups else ''))
    return '\n'.join(lines) + '\n'
