"""Loading and atomically publishing versions of a map store directory.

Layout: ``manifest.json`` names the current immutable data files ``descriptors-v{N}.npy``,
``places-v{N}.sqlite`` and (non-Flat indexes) ``index-v{N}.faiss``. A save writes the new files
under new names (temp name, fsync, rename), then replaces the manifest atomically, then deletes
files referenced by neither the new nor the previous manifest. A writer killed at any point
leaves the previous version loadable.
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from vpr_ros.mapstore import index as idx
from vpr_ros.mapstore import places as pl
from vpr_ros.mapstore.manifest import (fsync_dir, MANIFEST, MapError, read_manifest,
                                       sha256_file, verify_files, write_manifest)

SAVE_DELAY_ENV = 'VPR_ROS_MAPSTORE_SAVE_DELAY'  # test hook: seconds to sleep between file writes


@dataclasses.dataclass
class Version:
    """One loaded, validated, immutable version of a map."""

    manifest: Dict[str, Any]
    descriptors: np.ndarray         # (N, dim) memmap in the stored dtype
    con: sqlite3.Connection          # places, read-only
    geo: np.ndarray                  # (N, 4) x, y, z, yaw
    index: Any                       # faiss index over the N descriptors
    identity: Dict[str, tuple] = dataclasses.field(default_factory=dict)  # see file_identity


def file_identity(root: Path, manifest: Dict[str, Any]) -> Dict[str, tuple]:
    """(inode, size, mtime) of each data file of ``manifest``, taken when it is loaded."""
    out = {}
    for role, entry in manifest['files'].items():
        try:
            st = os.stat(root / entry['name'])
            out[role] = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            out[role] = None
    return out


def files_problem(root: Path, version: Version) -> str:
    """'' while the data files of a loaded ``version`` are the ones that were loaded; else what
    changed on disk (truncated, missing, replaced or rewritten). Only stats, no reads."""
    now = file_identity(root, version.manifest)
    for role, entry in version.manifest['files'].items():
        before, after = version.identity.get(role), now.get(role)
        if after is None:
            return f'{role} file {entry["name"]} of the served map is missing'
        if after[1] != entry['bytes']:
            return (f'{role} file {entry["name"]} of the served map has {after[1]} bytes on disk, '
                    f'the manifest says {entry["bytes"]} (truncated or overwritten after it '
                    'was loaded)')
        if before is not None and after != before:
            return (f'{role} file {entry["name"]} of the served map was replaced or rewritten '
                    'on disk after it was loaded')
    return ''


def _pause() -> None:
    delay = float(os.environ.get(SAVE_DELAY_ENV, '0') or 0)
    if delay > 0:
        time.sleep(delay)


def load_version(root: Path, manifest: Dict[str, Any], checksums: bool = True,
                 with_index: bool = True) -> Version:
    """Validate the files of ``manifest`` and load them (descriptors memory-mapped); without
    ``with_index`` the index is left None (the caller keeps its own)."""
    verify_files(root, manifest, checksums)
    identity = file_identity(root, manifest)
    n, dim, dtype = manifest['num_places'], manifest['dim'], np.dtype(manifest['dtype'])
    dpath = root / manifest['files']['descriptors']['name']
    try:
        desc = np.load(dpath, mmap_mode='r' if n else None, allow_pickle=False)
    except ValueError as exc:
        raise MapError(f'{dpath}: unreadable descriptor file ({exc})') from None
    if desc.shape != (n, dim) or desc.dtype != dtype:
        raise MapError(f'{dpath}: descriptors are {desc.shape} {desc.dtype}, the manifest says '
                       f'({n}, {dim}) {dtype}')
    con = pl.open_readonly(root / manifest['files']['places']['name'])
    try:
        geo = pl.load_geometry(con, n)
    except (sqlite3.Error, ValueError) as exc:
        con.close()
        raise MapError(f'{root}: places table does not match {n} descriptors ({exc})') from None
    itype = manifest['index_type']
    if not with_index:
        index = None
    elif idx.needs_file(itype):
        if 'index' not in manifest['files']:
            raise MapError(f'{root}: index {itype!r} has no index file in the manifest')
        index = idx.read_index(root / manifest['files']['index']['name'], dim, n)
    else:
        index = idx.build_index('Flat', desc, dim)
    return Version(manifest, desc, con, geo, index, identity)


def _publish(tmp: Path, final: Path) -> Dict[str, Any]:
    with open(tmp, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    return {'name': final.name, 'sha256': sha256_file(final), 'bytes': final.stat().st_size}


def write_version(root: Path, old: Optional[Version], new_manifest: Dict[str, Any],
                  pending_desc: Optional[np.ndarray], pending_places, index,
                  build, requests=()) -> Tuple[Dict[str, Any], Any]:
    """Write and publish a new version; returns (its manifest, its index).

    ``build`` is either the type string of ``index`` (used as is) or a callable
    ``build(descriptors_memmap) -> (type, index)`` run on the freshly written descriptors.
    ``requests`` are (request_id, place_ids, num_skipped) records kept with the places. The old
    descriptors are copied with pread, never through their memory map: a file truncated on
    disk is a MapError here, not a SIGBUS.
    """
    m = dict(new_manifest)
    counter = m['version_counter']
    files = dict(old.manifest['files']) if old is not None else {}
    n_old = old.manifest['num_places'] if old is not None else 0
    dpath = root / files['descriptors']['name'] if old is not None else None
    if old is None or pending_places:
        dpath = root / f'descriptors-v{counter}.npy'
        tmp = dpath.with_suffix('.npy.tmp')
        n_new = 0 if pending_desc is None else len(pending_desc)
        arr = np.lib.format.open_memmap(tmp, mode='w+', dtype=np.dtype(m['dtype']),
                                        shape=(n_old + n_new, m['dim']))
        rows = old.descriptors if old is not None else None
        if isinstance(rows, np.memmap):
            rows = idx.rows_for(rows)
        for start in range(0, n_old, idx.CHUNK):
            stop = min(start + idx.CHUNK, n_old)
            arr[start:stop] = rows[start:stop]
        if n_new:
            arr[n_old:] = pending_desc
        arr.flush()
        del arr
        files['descriptors'] = _publish(tmp, dpath)
        _pause()
    if old is None or pending_places or requests:
        ppath = root / f'places-v{counter}.sqlite'
        tmp = ppath.with_suffix('.sqlite.tmp')
        base = root / old.manifest['files']['places']['name'] if old is not None else None
        pl.write_places(tmp, base, pending_places or (), requests)
        files['places'] = _publish(tmp, ppath)
        _pause()
    if callable(build):
        n = m['num_places']
        desc = np.load(dpath, mmap_mode='r' if n else None, allow_pickle=False)
        itype, index = build(desc)
        del desc
    else:
        itype = build
    m['index_type'] = itype
    files.pop('index', None)
    if idx.needs_file(itype):
        ipath = root / f'index-v{counter}.faiss'
        tmp = ipath.with_suffix('.faiss.tmp')
        idx.write_index(index, tmp)
        files['index'] = _publish(tmp, ipath)
        _pause()
    m['files'] = files
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:8]
    m['version'] = f'{counter}-{digest}'
    m['updated'] = time.time()
    write_manifest(root, m)
    previous = old.manifest['files'] if old is not None else {}
    collect_garbage(root, [m['files'], previous])
    return m, index


def collect_garbage(root: Path, keep_files) -> None:
    """Remove data and temp files that none of the ``keep_files`` dicts references.

    The previous version is kept so a reader that just read the old manifest can still open it.
    """
    keep = {e['name'] for files in keep_files for e in files.values()} | {MANIFEST}
    for p in root.iterdir():
        stem = p.name.split('-v')[0]
        if p.name in keep or stem not in ('descriptors', 'places', 'index'):
            if not p.name.endswith('.tmp'):
                continue
        try:
            p.unlink()
        except OSError:
            pass
    fsync_dir(root)


def take_writer_lock(root: Path):
    fd = os.open(str(root / '.writer.lock'), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise MapError(f'{root} is already open for writing by another MapStore (one writer '
                       f'per map; open it read-only or close the other writer)') from None
    return fd


def load_current(root: Path, checksums: bool) -> Version:
    """Load the version the manifest names, retrying if a writer switched versions meanwhile."""
    for attempt in range(5):
        m = read_manifest(root)
        try:
            return load_version(root, m, checksums)
        except MapError:
            if attempt == 4 or read_manifest(root)['version'] == m['version']:
                raise
    raise AssertionError('unreachable')
