"""One call from a seed to folders and bags: ``generate_world(WorldConfig(...))``."""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from vpr_ros.geo import MapOrigin
from vpr_ros.world.bagwriter import BagWriter
from vpr_ros.world.conditions import DATABASE_VIEW, QUERY_VIEW, get_condition
from vpr_ros.world.occluders import random_occluders
from vpr_ros.world.render import Renderer
from vpr_ros.world.routes import Route, drive, plan_route
from vpr_ros.world.town import Town, TownSettings
from vpr_ros.world.writers import GSVWriter, VGWriter


@dataclasses.dataclass
class WorldConfig:
    """What to generate; the CLI flags of ``vpr-ros world`` map onto these fields."""

    seed: int = 0
    out: str = 'world'
    places: int = 50
    spacing_m: float = 10.0
    conditions: Tuple[str, ...] = ('day', 'dusk', 'night', 'rain')  # first = database
    formats: Tuple[str, ...] = ('vg', 'gsv', 'bag')
    size: Tuple[int, int] = (320, 240)
    supersample: int = 2
    split: str = 'test'
    city: str = ''                  # GSV-Cities city name; default 'Synth<seed>'
    images_per_place: int = 4       # GSV images per place (cycling through the conditions)
    lat: float = 47.3769            # map-frame origin (default: Zurich)
    lon: float = 8.5417
    occluders: bool = True
    bag_storage: Tuple[str, ...] = ('mcap', 'sqlite3')
    bag_condition: str = ''         # default: the second condition (a query condition)
    rate_hz: float = 10.0           # camera rate in the bag
    speed_mps: float = 7.0          # driving speed in the bag; frames every speed/rate metres
    bag_raw: bool = False           # also write /camera/image_raw (rgb8)
    bag_gps: bool = True            # write /gps/fix (a second pose-like topic next to /odom)
    kidnap: bool = False            # the bag jumps once mid-run to another part of the route
    jpeg_quality: int = 90
    progress: bool = True


@dataclasses.dataclass
class WorldSummary:
    """What generate_world wrote."""

    out: Path
    seed: int
    places: int
    frames: int
    render_ms: float                # mean render time per frame (ms)
    elapsed_s: float
    paths: Dict[str, List[Path]]    # vg_database, vg_queries, gsv_images, gsv_csv, bags, places


def town_for(places: int, spacing_m: float, seed: int) -> Town:
    """The smallest square town whose street walks are long enough for the route."""
    s = TownSettings()
    need = (places + 2) * spacing_m
    b = 2
    while 2 * b * (b + 1) * s.block_m * 0.45 < need:
        b += 1
    return Town.from_seed(seed, dataclasses.replace(s, blocks_x=b, blocks_y=b))


class _Shooter:
    """Renders frames with per-frame occluders and keeps the timing."""

    def __init__(self, renderer: Renderer, cfg: WorldConfig):
        self.r, self.cfg, self.ms, self.frames = renderer, cfg, 0.0, 0

    def __call__(self, pose, condition, key):
        rng = np.random.default_rng([self.cfg.seed, *key])
        occ = random_occluders(self.r.town, pose, rng) if self.cfg.occluders else None
        t0 = time.perf_counter()
        img = self.r.render(pose, condition, occ, noise_seed=int(rng.integers(2**31)))
        self.ms += (time.perf_counter() - t0) * 1000
        self.frames += 1
        return img


def _bar(total: int, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, unit='frame', desc='rendering', disable=not enabled)


def _write_places(out: Path, route: Route, origin: MapOrigin) -> Path:
    path = out / 'places.csv'
    with open(path, 'w') as f:
        f.write('place_id,x,y,yaw,lat,lon\n')
        for i, p in enumerate(route.poses()):
            lat, lon = origin.xy_to_latlon([[p.x, p.y]])[0]
            f.write(f'{i},{p.x:.3f},{p.y:.3f},{p.yaw:.5f},{lat:.7f},{lon:.7f}\n')
    return path


def generate_world(cfg: WorldConfig) -> WorldSummary:
    """Render the town of ``cfg.seed`` and write the requested formats under ``cfg.out``."""
    t_start = time.perf_counter()
    for c in cfg.conditions:
        get_condition(c)
    unknown = set(cfg.formats) - {'vg', 'gsv', 'bag'}
    if unknown:
        raise ValueError(f'unknown formats {sorted(unknown)}; known: vg, gsv, bag')
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    town = town_for(cfg.places, cfg.spacing_m, cfg.seed)
    route = plan_route(town, cfg.places, cfg.spacing_m, seed=cfg.seed)
    origin = MapOrigin.from_latlon(cfg.lat, cfg.lon)
    conds = list(cfg.conditions)
    shots = max(cfg.images_per_place if 'gsv' in cfg.formats else 0, len(conds))
    bag_cond = cfg.bag_condition or conds[min(1, len(conds) - 1)]
    bag_poses = drive(route, cfg.speed_mps / cfg.rate_hz, QUERY_VIEW, cfg.seed, cfg.kidnap) \
        if 'bag' in cfg.formats else []
    paths: Dict[str, List[Path]] = {'places': [_write_places(out, route, origin)]}
    vg = VGWriter(out, cfg.split, origin, cfg.jpeg_quality) if 'vg' in cfg.formats else None
    gsv = GSVWriter(out, cfg.city or f'Synth{cfg.seed}', origin, cfg.jpeg_quality) \
        if 'gsv' in cfg.formats else None
    with Renderer(town, cfg.size, cfg.supersample) as renderer:
        shoot = _Shooter(renderer, cfg)
        if vg is not None:  # the intrinsics a map of these images stores
            vg.write_camera(renderer.fovy, cfg.size, route.pitch_deg)
        total = (cfg.places * shots if (vg or gsv) else 0) + len(bag_poses)
        with _bar(total, cfg.progress) as bar:
            for i in range(cfg.places):
                if not (vg or gsv):
                    break
                for k in range(shots):
                    cond = conds[k % len(conds)]
                    view = DATABASE_VIEW if k == 0 else QUERY_VIEW
                    pose = route.place_pose(i, view, np.random.default_rng([cfg.seed, i, k]))
                    img = shoot(pose, cond, (i, k))
                    if vg and k < len(conds):
                        vg.write('database' if k == 0 else 'queries', img, pose, i, cond,
                                 i if k == 0 else (k - 1) * cfg.places + i)
                    if gsv and k < cfg.images_per_place:
                        gsv.write(img, pose, i, cond, k)
                    bar.update()
            if bag_poses:
                paths['bags'] = _render_bags(out, cfg, bag_cond, bag_poses, origin, shoot, bar)
    if vg:
        paths['vg_database'], paths['vg_queries'] = vg.paths['database'], vg.paths['queries']
    if gsv:
        paths['gsv_images'], paths['gsv_csv'] = gsv.paths, [gsv.close()]
    meta = {'seed': cfg.seed, 'origin_lat': cfg.lat, 'origin_lon': cfg.lon,
            'zone': f'{origin.zone_number}{origin.zone_letter}', 'places': cfg.places,
            'spacing_m': cfg.spacing_m, 'conditions': conds, 'bag_condition': bag_cond,
            'frame_rate_hz': cfg.rate_hz, 'speed_mps': cfg.speed_mps, 'kidnap': cfg.kidnap,
            'size': list(cfg.size), 'town_blocks': town.settings.blocks_x}
    (out / 'world.json').write_text(json.dumps(meta, indent=1))
    return WorldSummary(out, cfg.seed, cfg.places, shoot.frames,
                        shoot.ms / max(shoot.frames, 1), time.perf_counter() - t_start, paths)


def _render_bags(out, cfg, cond, poses, origin, shoot, bar) -> List[Path]:
    """Render the drive once and stream every frame into all requested storages."""
    name = f'{cond}{"_kidnap" if cfg.kidnap else ""}'
    paths = [out / 'bags' / f'{name}_{storage}' for storage in cfg.bag_storage]
    t0_ns = 1_700_000_000 * 10**9  # a fixed start time keeps the bags reproducible
    from vpr_ros.io.camera_file import pinhole_from_fov
    camera = pinhole_from_fov(shoot.r.fovy, int(cfg.size[0]), int(cfg.size[1]))  # camera_info
    bags = [BagWriter(p, origin, s, cfg.bag_raw, cfg.speed_mps, cfg.jpeg_quality, cfg.bag_gps,
                      camera) for p, s in zip(paths, cfg.bag_storage)]
    try:
        for j, pose in enumerate(poses):
            img = shoot(pose, cond, (10**6, j))
            for bag in bags:
                bag.write(t0_ns + int(round(j * 1e9 / cfg.rate_hz)), pose, img)
            bar.update()
    finally:
        for bag in bags:
            bag.close()
    return paths


def sample_world(out_dir, seed: int = 7, places: int = 48,
                 progress: bool = False) -> WorldSummary:
    """The README demo preset: day database, dusk queries, 320x240, an MCAP bag at dusk.

    The bag drives at 8 m/s with a 4 Hz camera (a frame every 2 m) to stay quick to generate.
    """
    cfg = WorldConfig(seed=seed, out=str(out_dir), places=places, conditions=('day', 'dusk'),
                      formats=('vg', 'bag'), bag_storage=('mcap',), rate_hz=4.0, speed_mps=8.0,
                      progress=progress)
    return generate_world(cfg)
