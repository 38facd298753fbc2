"""Place metadata: the PlaceRecord dataclass and its SQLite table.

Each saved version has its own immutable SQLite file (written in WAL mode, checkpointed before
it is published); readers open it with ``immutable=1`` so they need no write access.
Row ``id`` equals the row of the place's descriptor in the descriptor matrix.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

import numpy as np

COLUMNS = ('id', 'x', 'y', 'z', 'yaw', 'lat', 'lon', 'source', 'robot_id', 'session',
           'stamp', 'note')
SCHEMA = """CREATE TABLE IF NOT EXISTS places (
    id INTEGER PRIMARY KEY, x REAL NOT NULL, y REAL NOT NULL, z REAL NOT NULL,
    yaw REAL NOT NULL, lat REAL, lon REAL, source TEXT, robot_id TEXT, session TEXT,
    stamp REAL, note TEXT)"""
# answered add requests by client key (idempotent retries); the oldest beyond MAX_REQUESTS go
REQUESTS_SCHEMA = """CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT UNIQUE NOT NULL,
    place_ids TEXT NOT NULL, num_skipped INTEGER NOT NULL)"""
MAX_REQUESTS = 10_000


@dataclasses.dataclass
class PlaceRecord:
    """One place of the map: pose in the map frame (metres, yaw in radians, REP 103) and tags.

    ``id`` is assigned by the store on add (-1 before). lat/lon are NaN when unknown.
    """

    x: float
    y: float
    z: float = 0.0
    yaw: float = 0.0
    lat: float = math.nan
    lon: float = math.nan
    source: str = ''
    robot_id: str = ''
    session: str = ''
    stamp: float = 0.0
    note: str = ''
    id: int = -1

    @property
    def quaternion(self):
        """(qx, qy, qz, qw) of a rotation by ``yaw`` about z."""
        return 0.0, 0.0, math.sin(self.yaw / 2.0), math.cos(self.yaw / 2.0)

    def validate(self, where: str = 'place') -> None:
        """ValueError when the pose is not finite."""
        vals = (self.x, self.y, self.z, self.yaw, self.stamp)
        if not all(isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(v)
                   for v in vals):
            raise ValueError(f'{where}: x, y, z, yaw and stamp must be finite numbers, got '
                             f'{vals}')


def _nan(v) -> float:
    return math.nan if v is None else float(v)


def row_to_record(row) -> PlaceRecord:
    (pid, x, y, z, yaw, lat, lon, source, robot, session, stamp, note) = row
    return PlaceRecord(x=x, y=y, z=z, yaw=yaw, lat=_nan(lat), lon=_nan(lon),
                       source=source or '', robot_id=robot or '', session=session or '',
                       stamp=_nan(stamp), note=note or '', id=int(pid))


def record_to_row(r: PlaceRecord) -> tuple:
    # SQLite stores NaN as NULL; row_to_record turns NULL back into NaN.
    return (int(r.id), float(r.x), float(r.y), float(r.z), float(r.yaw),
            None if math.isnan(r.lat) else float(r.lat),
            None if math.isnan(r.lon) else float(r.lon), str(r.source), str(r.robot_id),
            str(r.session), float(r.stamp), str(r.note))


def open_readonly(path: Path) -> sqlite3.Connection:
    """Open a published (immutable) places file read-only, usable from any thread."""
    uri = f'file:{path}?mode=ro&immutable=1'
    return sqlite3.connect(uri, uri=True, check_same_thread=False)


def write_places(path: Path, base: Path, new: Sequence[PlaceRecord], requests=()) -> None:
    """Write ``path`` as a copy of ``base`` (or empty) plus ``new`` rows and ``requests``
    ((request_id, place_ids, num_skipped) answers), in one transaction."""
    if base is not None:
        with open(base, 'rb') as src, open(path, 'wb') as dst:
            while True:
                block = src.read(1 << 22)
                if not block:
                    break
                dst.write(block)
    con = sqlite3.connect(str(path))
    try:
        con.execute('PRAGMA journal_mode=WAL')
        con.execute(SCHEMA)
        con.execute(REQUESTS_SCHEMA)
        with con:
            con.executemany(f'INSERT INTO places ({",".join(COLUMNS)}) VALUES '
                            f'({",".join("?" * len(COLUMNS))})',
                            [record_to_row(r) for r in new])
            con.executemany('INSERT OR REPLACE INTO requests (request_id, place_ids, '
                            'num_skipped) VALUES (?, ?, ?)',
                            [(str(k), json.dumps([int(i) for i in ids]), int(skipped))
                             for k, ids, skipped in requests])
            con.execute('DELETE FROM requests WHERE seq <= (SELECT MAX(seq) FROM requests) - ?',
                        (MAX_REQUESTS,))
        con.execute('PRAGMA wal_checkpoint(TRUNCATE)')
        con.execute('PRAGMA journal_mode=DELETE')  # self-contained file, no -wal/-shm needed
    finally:
        con.close()


def fetch(con: sqlite3.Connection, ids: Iterable[int]) -> Dict[int, PlaceRecord]:
    """Records of the given ids that exist in the table, keyed by id."""
    ids = [int(i) for i in ids]
    out: Dict[int, PlaceRecord] = {}
    for start in range(0, len(ids), 900):  # SQLite's host-parameter limit
        chunk = ids[start:start + 900]
        q = (f'SELECT {",".join(COLUMNS)} FROM places WHERE id IN '
             f'({",".join("?" * len(chunk))})')
        for row in con.execute(q, chunk):
            out[int(row[0])] = row_to_record(row)
    return out


def fetch_request(con: sqlite3.Connection, request_id: str):
    """(place_ids, num_skipped) recorded for ``request_id``, or None (also for maps saved
    before requests were recorded)."""
    try:
        row = con.execute('SELECT place_ids, num_skipped FROM requests WHERE request_id = ?',
                          (str(request_id),)).fetchone()
    except sqlite3.OperationalError:  # no requests table
        return None
    return None if row is None else (json.loads(row[0]), int(row[1]))


def load_geometry(con: sqlite3.Connection, n: int) -> np.ndarray:
    """(n, 4) float64 x, y, z, yaw ordered by id; MapError-worthy ValueError if ids have gaps."""
    rows = con.execute('SELECT id, x, y, z, yaw FROM places ORDER BY id').fetchall()
    arr = np.array(rows, dtype=np.float64).reshape(-1, 5)
    if arr.shape[0] != n or (n and (arr[0, 0] != 0 or arr[-1, 0] != n - 1)):
        raise ValueError(f'places table has {arr.shape[0]} rows with ids '
                         f'{arr[0, 0] if n else "-"}..{arr[-1, 0] if len(arr) else "-"}, '
                         f'expected ids 0..{n - 1}')
    return arr[:, 1:]


def group_counts(con: sqlite3.Connection) -> List[tuple]:
    """(robot_id, session, count, first_stamp, last_stamp) rows."""
    return con.execute('SELECT robot_id, session, COUNT(*), MIN(stamp), MAX(stamp) FROM places '
                       'GROUP BY robot_id, session ORDER BY robot_id, session').fetchall()


def stats_from_rows(rows, num_places: int) -> Dict:
    """Aggregate (robot_id, session, count, first, last) rows into the stats() dict."""
    robots: Dict[str, int] = {}
    sessions: Dict[str, int] = {}
    detail: Dict[str, Dict] = {}
    for robot, session, count, first, last in rows:
        robots[robot] = robots.get(robot, 0) + count
        sessions[session] = sessions.get(session, 0) + count
        d = detail.setdefault(robot, {}).setdefault(
            session, {'places': 0, 'first_stamp': math.inf, 'last_stamp': -math.inf})
        d['places'] += count
        d['first_stamp'] = min(d['first_stamp'], first)
        d['last_stamp'] = max(d['last_stamp'], last)
    return {'num_places': num_places, 'robots': robots, 'sessions': sessions,
            'robot_sessions': detail}
