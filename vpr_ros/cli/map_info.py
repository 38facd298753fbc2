"""``vpr-ros map-info MAPDIR``: manifest and per-robot/session statistics of a map."""
from __future__ import annotations

import argparse
import json
import sys

from vpr_ros.mapstore.manifest import MapError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``vpr-ros map-info``."""
    parser.add_argument('map', help='map directory')
    parser.add_argument('--json', action='store_true', help='print JSON')
    parser.add_argument('--no-verify', action='store_true',
                        help='skip sha256 verification (sizes are still checked)')


def info(path, verify: bool = True) -> dict:
    """{'manifest': ..., 'stats': ...} of the map at ``path`` (MapError if it is invalid)."""
    from vpr_ros.mapstore.store import MapStore
    with MapStore.open(path, verify_checksums=verify) as store:
        return {'manifest': store.manifest, 'stats': store.stats()}


def run(args) -> int:
    """Print the map's manifest and statistics; 1 if the map is invalid."""
    try:
        data = info(args.map, not args.no_verify)
    except MapError as exc:
        print(f'map-info: error: {exc}', file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    m, s = data['manifest'], data['stats']
    print(f"map {args.map}")
    for key in ('encoder', 'dim', 'dtype', 'normalization', 'frame_id', 'num_places', 'version',
                'index_spec', 'index_type', 'format_version'):
        print(f'  {key:<14} {m[key]}')
    if m.get('origin'):
        o = m['origin']
        print(f"  {'origin':<14} UTM {o['zone_number']}{o['zone_letter']} "
              f"E {o['easting']:.2f} N {o['northing']:.2f}")
    for role, e in sorted(m['files'].items()):
        print(f"  {role + ' file':<14} {e['name']} ({e['bytes']} B, sha256 {e['sha256'][:12]}…)")
    print('  robot / session: places [first_stamp .. last_stamp]')
    for robot, sessions in s['robot_sessions'].items():
        for session, d in sessions.items():
            print(f"    {robot or '-'} / {session or '-'}: {d['places']} "
                  f"[{d['first_stamp']:.3f} .. {d['last_stamp']:.3f}]")
    return 0
