"""``vpr-ros build-map --bench N``: images/s of the local and the Ray executors side by side.

The first N items of the source (VG folder or manifest) are written to a CSV manifest, then
built three times into ``<out>/bench-*``: local (``--workers`` decoding threads), Ray with 1
actor and Ray with 2 actors. images/s counts the encoding phase only (model loading and Ray
start-up excluded); the total seconds include them.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import platform
import shutil
from itertools import islice
from pathlib import Path
from typing import Dict, List

from vpr_ros.mapstore.build import build_map, BuildConfig, open_source


def _manifest(cfg: BuildConfig, n: int, path: Path) -> int:
    items = list(islice(iter(open_source(cfg)), n))
    if any(not isinstance(it.image, str) for it in items):
        raise ValueError('--bench needs a vg or manifest source (image files)')
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['image', 'x', 'y', 'yaw'])
        for it in items:
            w.writerow([str(Path(it.image).resolve()), it.place.x, it.place.y, it.place.yaw])
    return len(items)


def run_bench(cfg: BuildConfig, images: int) -> List[Dict]:
    """Build the first ``images`` items with each executor; print and return the rows."""
    import os
    from vpr_ros.mapstore.ray_build import ray_session
    root = Path(cfg.out)
    root.mkdir(parents=True, exist_ok=True)
    n = _manifest(cfg, images, root / 'bench-images.csv')
    base = dataclasses.replace(cfg, source='manifest', input=str(root / 'bench-images.csv'))
    runs = [('local', cfg.workers), ('ray', 1), ('ray', 2)]
    rows = []
    with ray_session(cfg.ray_address, num_cpus=os.cpu_count()):
        for executor, workers in runs:
            out = root / f'bench-{executor}-{workers}'
            shutil.rmtree(out, ignore_errors=True)
            s = build_map(dataclasses.replace(base, out=str(out), executor=executor,
                                              workers=workers))
            rows.append({'executor': executor, 'workers': workers, 'images': n,
                         'images_per_s': s['images_per_s'], 'encode_s': s['encode_seconds'],
                         'total_s': s['seconds']})
            shutil.rmtree(out, ignore_errors=True)
    size = 'x'.join(map(str, cfg.input_size)) or 'model default'
    print(f'build-map bench: {n} images, {cfg.model} at {size}, batch {cfg.batch_size}, '
          f'{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})')
    print('| executor | workers | images/s | encode s | total s |')
    print('|---|---|---|---|---|')
    for r in rows:
        what = 'decoding threads' if r['executor'] == 'local' else 'actor(s)'
        print(f"| {r['executor']} | {r['workers']} {what} | {r['images_per_s']:.1f} | "
              f"{r['encode_s']:.1f} | {r['total_s']:.1f} |")
    (root / 'bench-build.json').write_text(json.dumps(rows, indent=1))
    return rows
