"""manifest.json of a map store: the single source of truth for which data files are current.

The manifest is replaced atomically (temp file, fsync, os.replace, fsync of the directory),
so a reader sees either the previous version or the new one, never a mixture.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict

from vpr_ros.validation import is_inside, plain_file_name

FORMAT_VERSION = 1
MANIFEST = 'manifest.json'
DTYPES = ('float16', 'float32')
REQUIRED = {'format_version': int, 'encoder': str, 'dim': int, 'dtype': str,
            'normalization': str, 'frame_id': str, 'num_places': int, 'version': str,
            'version_counter': int, 'index_spec': str, 'index_type': str, 'files': dict}


class MapError(RuntimeError):
    """A map store that cannot be created, loaded, validated or changed; the message says why."""


def sha256_file(path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            h.update(block)
    return h.hexdigest()


def fsync_dir(path) -> None:
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(path) -> Dict[str, Any]:
    """The parsed and field-checked manifest of the map directory ``path`` (MapError if bad)."""
    root = Path(path)
    if not root.is_dir():
        raise MapError(f'map directory {str(root)!r} does not exist; build one with '
                       f'`vpr-ros build-map ... --out {root}` or check the map_path')
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise MapError(f'{str(root)!r} is not a map store: no {MANIFEST} (a save may never '
                       f'have completed; rebuild the map)')
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, ValueError) as exc:
        raise MapError(f'{mpath}: unreadable manifest ({exc})') from None
    validate_manifest(manifest, mpath)
    return manifest


def validate_manifest(m: Dict[str, Any], where) -> None:
    """Check field presence, types and value ranges; MapError naming the bad field."""
    if not isinstance(m, dict):
        raise MapError(f'{where}: manifest is not a JSON object')
    for key, typ in REQUIRED.items():
        if key not in m:
            raise MapError(f'{where}: manifest has no {key!r} field')
        if not isinstance(m[key], typ) or (typ is int and isinstance(m[key], bool)):
            raise MapError(f'{where}: manifest field {key!r} must be {typ.__name__}, '
                           f'got {m[key]!r}')
    if m['format_version'] > FORMAT_VERSION:
        raise MapError(f'{where}: map format {m["format_version"]} is newer than this vpr_ros '
                       f'supports ({FORMAT_VERSION}); update vpr_ros')
    if m['dtype'] not in DTYPES:
        raise MapError(f'{where}: dtype {m["dtype"]!r} is not one of {DTYPES}')
    if m['dim'] <= 0 or m['num_places'] < 0:
        raise MapError(f'{where}: bad dim {m["dim"]} or num_places {m["num_places"]}')
    if m['normalization'] != 'l2':
        raise MapError(f'{where}: normalization {m["normalization"]!r} unsupported (only l2)')
    for role in ('descriptors', 'places'):
        entry = m['files'].get(role)
        if not isinstance(entry, dict) or not {'name', 'sha256', 'bytes'} <= set(entry):
            raise MapError(f'{where}: manifest files.{role} needs name, sha256 and bytes')
    for role, entry in m['files'].items():
        # a map's data files are in its own directory: a name with a directory part could
        # make a merge or a load read (or a save replace) files anywhere
        problem = plain_file_name(entry.get('name') if isinstance(entry, dict) else None,
                                  f'files.{role}.name')
        if problem:
            raise MapError(f'{where}: {problem}; refused')
    origin = m.get('origin')
    if origin is not None and (not isinstance(origin, dict) or not {
            'easting', 'northing', 'zone_number', 'zone_letter'} <= set(origin)):
        raise MapError(f'{where}: origin must have easting, northing, zone_number, zone_letter')


def verify_files(root: Path, m: Dict[str, Any], checksums: bool = True) -> None:
    """Every data file listed in the manifest exists with the recorded size (and sha256)."""
    for role, entry in m['files'].items():
        p = root / entry['name']
        if p.is_symlink() and not is_inside(root, p):
            raise MapError(f'{root}: {role} file {entry["name"]} is a link to '
                           f'{os.path.realpath(p)}, outside the map directory; refused')
        if not p.is_file():
            raise MapError(f'{root}: {role} file {entry["name"]} is missing')
        size = p.stat().st_size
        if size != entry['bytes']:
            raise MapError(f'{root}: {role} file {entry["name"]} has {size} bytes, the manifest '
                           f'says {entry["bytes"]} (corrupt or truncated; rebuild the map)')
        if checksums and sha256_file(p) != entry['sha256']:
            raise MapError(f'{root}: checksum mismatch for {role} file {entry["name"]} '
                           f'(the file changed after it was saved; rebuild or restore the map)')


def write_manifest(root: Path, m: Dict[str, Any]) -> None:
    """Atomically replace manifest.json in ``root``."""
    tmp = root / (MANIFEST + '.tmp')
    with open(tmp, 'w') as f:
        json.dump(m, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, root / MANIFEST)
    fsync_dir(root)


def check_compatible(m: Dict[str, Any], expected_encoder=None, expected_dim=None,
                     where='') -> None:
    """MapError naming both sides when the map's encoder or dimension is not the expected one."""
    if expected_encoder is not None and m['encoder'] != expected_encoder:
        raise MapError(f'{where}: map was built by encoder {m["encoder"]!r} ({m["dim"]}-d) but '
                       f'{expected_encoder!r} was expected; descriptors of different models '
                       f'are not comparable: rebuild the map with {expected_encoder!r}')
    if expected_dim is not None and int(m['dim']) != int(expected_dim):
        raise MapError(f'{where}: map descriptors are {m["dim"]}-d ({m["encoder"]}) but '
                       f'{expected_dim}-d were expected')
