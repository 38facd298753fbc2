"""Peak memory of the ``train asym`` data path, streaming vs preloading, on a GSV-Cities tree.

``python -m vpr_ros.bench.train_stream --root /tmp/gsv --generate 100000`` writes a generated
tree (vpr_ros.bench.gsv_tree) if asked, then measures each mode in its own process (so each
peak RSS is its own): read the rows (vpr_ros.io GSV-Cities reader), fill the gallery-feature
cache (gallery_cache.cached_gallery_features with a cheap fixed gallery stand-in of ``--dim``
outputs, written to disk batch by batch), then one epoch of P x K batches to the query
network's input tensors. ``stream``: images decoded per batch (batches.LazyImages +
stream_batches), gallery rows read per batch (feature_file.NpyRows). ``preload``: the old
path, every image and all features in memory first (on ``--preload-limit`` images).
Single-threaded. Prints one line per mode: images, batches, seconds, peak RSS, peak anonymous
RSS (heap; file-backed pages excluded).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def rss_mb() -> dict:
    """Current RSS, anonymous RSS and the high-water mark VmHWM (MB) from /proc/self/status."""
    out = {}
    for line in Path('/proc/self/status').read_text().splitlines():
        key, _, val = line.partition(':')
        if key in ('VmRSS', 'RssAnon', 'VmHWM'):
            out[key] = int(val.split()[0]) / 1024.0
    return out


def stand_in_gallery(dim: int, size=(48, 64)):
    """A fixed, cheap 'gallery model': a 4x4 colour thumbnail through a seeded linear map to
    ``dim`` outputs (the cache path does not depend on what the model is)."""
    import torch
    from torch import nn
    from vpr_ros.models.base import VPRModel
    from vpr_ros.models.spec import ModelSpec
    torch.manual_seed(0)
    spec = ModelSpec(name=f'bench_gallery_{dim}', role='gallery', input_size=tuple(size),
                     dim=dim, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    body = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(48, dim))
    return VPRModel(spec, body, nn.Identity(), dim, dim).eval()


def measure(root: str, mode: str, limit: int, dim: int, size, batch: int, per_place: int,
            cache: str, workers: int) -> dict:
    """One mode in this process; the figures as a dict."""
    import cv2
    import numpy as np
    import torch
    from vpr_ros.training.batches import LazyImages, place_batches, stream_batches, to_tensor
    from vpr_ros.training.feature_file import NpyRows
    from vpr_ros.training.gallery_cache import cached_gallery_features
    from vpr_ros.training.places import read_rows
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    base = rss_mb()   # after the imports (torch: most of the process)
    t0 = time.perf_counter()
    rows = read_rows(root)
    paths, labels = rows.paths[:limit or None], rows.places[:limit or None]
    t_rows = time.perf_counter() - t0
    after_rows = rss_mb()
    model = stand_in_gallery(dim)
    feats, meta = cached_gallery_features(model, paths, cache, progress=False, batch_size=256)
    t_cache = time.perf_counter() - t0 - t_rows
    after_cache = rss_mb()
    batches = place_batches(labels, max(2, batch // per_place), per_place,
                            np.random.default_rng(0))
    mean, std = (0.5,) * 3, (0.5,) * 3
    peak_anon = after_cache['RssAnon']   # the epoch's peak from here on
    t1 = time.perf_counter()
    if mode == 'stream':
        gal = NpyRows(feats.filename)
        del feats
        it = stream_batches(LazyImages(paths, size), batches, gal, workers=workers)
    else:
        from vpr_ros.training.asym import load_query_images
        images = load_query_images(paths, size, progress=False, stream='never')
        gal_all = np.array(feats)
        del feats
        it = ((b, images[b], gal_all[b]) for b in batches)
    n = 0
    for idx, imgs, g in it:
        x = to_tensor(imgs, mean, std, augment=True)
        n += 1
        if n % 50 == 0 or n == len(batches):
            peak_anon = max(peak_anon, rss_mb()['RssAnon'])
        del x, imgs, g
    return {'mode': mode, 'images': len(paths), 'places': int(len(np.unique(labels))),
            'batches': n, 'batch_size': batch, 'input_size': list(size), 'gallery_dim': dim,
            'read_rows_s': round(t_rows, 2), 'cache_s': round(t_cache, 2),
            'cache_cached': meta['cached'], 'epoch_s': round(time.perf_counter() - t1, 2),
            'baseline_rss_mb': round(base['VmRSS'], 1),
            'baseline_anon_mb': round(base['RssAnon'], 1),
            'anon_after_rows_mb': round(after_rows['RssAnon'], 1),
            'anon_after_cache_mb': round(after_cache['RssAnon'], 1),
            'rss_after_cache_mb': round(after_cache['VmRSS'], 1),
            'peak_anon_mb': round(peak_anon, 1),
            'peak_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--root', required=True, help='GSV-Cities root (generated with --generate)')
    p.add_argument('--generate', type=int, default=0, help='write a tree of N images first')
    p.add_argument('--modes', nargs='+', default=['stream', 'preload'])
    p.add_argument('--limit', type=int, default=0, help='images for stream (0 = all)')
    p.add_argument('--preload-limit', type=int, default=10000, help='images for preload')
    p.add_argument('--dim', type=int, default=512, help='gallery feature width')
    p.add_argument('--input-size', type=int, nargs=2, default=[120, 160])
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--per-place', type=int, default=4)
    p.add_argument('--workers', type=int, default=0, help='DataLoader processes (0: thread)')
    p.add_argument('--cache', default='', help="feature cache ('' = <root>/.bench_cache)")
    p.add_argument('--child', default='', help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    cache = a.cache or str(Path(a.root) / '.bench_cache')
    if a.child:
        limit = a.limit if a.child == 'stream' else a.preload_limit
        res = measure(a.root, a.child, limit, a.dim, tuple(a.input_size), a.batch_size,
                      a.per_place, cache, a.workers)
        print(json.dumps(res), flush=True)
        return 0
    if a.generate:
        from vpr_ros.bench.gsv_tree import generate_gsv_tree
        t = time.perf_counter()
        generate_gsv_tree(a.root, a.generate, a.per_place)
        print(f'[bench] generated {a.generate} images in {time.perf_counter() - t:.0f} s',
              flush=True)
    args = [a for a in (argv if argv is not None else sys.argv[1:])]
    results = []
    for mode in a.modes:
        out = subprocess.run([sys.executable, '-m', 'vpr_ros.bench.train_stream', *args,
                              '--generate', '0', '--child', mode], check=True,
                             capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        r = results[-1]
        print(f"[bench] {r['mode']:8s} images {r['images']:7d} batches {r['batches']:5d} "
              f"epoch {r['epoch_s']:7.1f} s  peak RSS {r['peak_rss_mb']:7.1f} MB  "
              f"epoch peak anon {r['peak_anon_mb']:7.1f} MB (after imports "
              f"{r['baseline_anon_mb']:.1f}, rows {r['anon_after_rows_mb']:.1f}, cache "
              f"{r['anon_after_cache_mb']:.1f})", flush=True)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
