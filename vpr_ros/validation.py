"""Checks of everything that arrives from outside (service requests, topics, paths), without ROS.

Every check raises ``InputError`` (a ValueError) with a message naming the field and the
limit, so a node can put it as-is into a service response or a log line.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

MAX_COORD_M = 1e7          # |x|, |y|, |z| of a map position: beyond the Earth, clearly wrong
MAX_TEXT_LEN = 256         # robot_id, session, frame_id, encoder names
MIN_QUATERNION_NORM = 1e-6


class InputError(ValueError):
    """An input refused before it reaches the map or the filter; the message says why."""


def check_finite_bounded(values: Iterable[float], names: str, where: str = '',
                         bound: float = MAX_COORD_M) -> None:
    """Each value a finite number with magnitude <= ``bound``."""
    vals = [float(v) for v in values]
    if not all(math.isfinite(v) and abs(v) <= bound for v in vals):
        raise InputError(f'{where}{names} must be finite with magnitude <= {bound:g}, got '
                         f'{tuple(vals)}')


def check_position(x: float, y: float, z: float, where: str = '') -> None:
    """A map position: finite, within ``MAX_COORD_M`` metres of the origin on every axis."""
    check_finite_bounded((x, y, z), 'position x, y, z (m)', where)


def check_quaternion(x: float, y: float, z: float, w: float, where: str = '') -> None:
    """Finite and normalisable (not all zero); callers normalise it themselves."""
    q = [float(v) for v in (x, y, z, w)]
    if not all(math.isfinite(v) for v in q):
        raise InputError(f'{where}orientation quaternion must be finite, got {tuple(q)}')
    if math.sqrt(sum(v * v for v in q)) < MIN_QUATERNION_NORM:
        raise InputError(f'{where}orientation quaternion {tuple(q)} has no direction (norm 0); '
                         'the identity is (0, 0, 0, 1)')


def check_pose(pose, where: str = '') -> None:
    """A geometry_msgs/Pose (or anything with .position and .orientation)."""
    p, o = pose.position, pose.orientation
    check_position(p.x, p.y, p.z, where)
    check_quaternion(o.x, o.y, o.z, o.w, where)


def check_latlon(lat: float, lon: float, where: str = '') -> None:
    """WGS84 degrees in range; both NaN means "no GNSS fix" and is accepted."""
    lat, lon = float(lat), float(lon)
    if math.isnan(lat) and math.isnan(lon):
        return
    if not (math.isfinite(lat) and math.isfinite(lon) and -90.0 <= lat <= 90.0
            and -180.0 <= lon <= 180.0):
        raise InputError(f'{where}latitude/longitude ({lat}, {lon}) must be finite degrees in '
                         '[-90, 90] / [-180, 180] (both NaN = unknown)')


def check_text(value: str, name: str, where: str = '', max_len: int = MAX_TEXT_LEN) -> None:
    """A short identifier: at most ``max_len`` characters, no NUL."""
    if len(value) > max_len:
        raise InputError(f'{where}{name} has {len(value)} characters, at most {max_len} '
                         'are accepted')
    if '\x00' in value:
        raise InputError(f'{where}{name} contains a NUL character')


def check_descriptor(values: Sequence[float], dim: int, where: str = '') -> np.ndarray:
    """float32 (dim,) descriptor: the right size, finite and not all zero."""
    d = np.asarray(values, dtype=np.float32).reshape(-1)
    if d.size != dim:
        raise InputError(f'{where}descriptor has {d.size} values, the map expects {dim}')
    if not np.all(np.isfinite(d)):
        raise InputError(f'{where}descriptor contains NaN or infinite values')
    norm = float(np.linalg.norm(d.astype(np.float64)))
    if not norm > 1e-12:
        raise InputError(f'{where}descriptor is all zeros (no direction to search with)')
    return d


def all_finite(*arrays) -> bool:
    """True when every value of every array (or scalar) is finite."""
    return all(bool(np.all(np.isfinite(np.asarray(a, dtype=np.float64)))) for a in arrays)


def confined_path(root, path: str, what: str = 'path') -> Path:
    """``path`` (absolute, or relative to ``root``) resolved, refused unless it stays inside
    ``root`` once symlinks and ``..`` are resolved. Returns the resolved path."""
    if not isinstance(path, str) or not path.strip():
        raise InputError(f'{what} is empty')
    if '\x00' in path:
        raise InputError(f'{what} contains a NUL character')
    if len(path) > 4096:
        raise InputError(f'{what} is longer than 4096 characters')
    base = Path(root).resolve()
    if '..' in Path(path).parts:
        raise InputError(f'{what} {path!r} contains "..": give a path inside {base}')
    target = (base / path).resolve()  # an absolute path replaces base; symlinks followed
    if target != base and base not in target.parents:
        raise InputError(f'{what} {path!r} is outside the maps root {base} (the gallery_server '
                         'parameter maps_root)')
    return target


def is_inside(root, path) -> bool:
    """Whether ``path`` resolves (symlinks followed) to ``root`` or below it."""
    base, target = Path(root).resolve(), Path(path).resolve()
    return target == base or base in target.parents


def plain_file_name(name, what: str = 'file name') -> str:
    """'' when ``name`` is a bare file name (no directory part), otherwise the reason."""
    if not isinstance(name, str) or not name or name in ('.', '..'):
        return f'{what} {name!r} is not a file name'
    if '/' in name or '\\' in name or '\x00' in name:
        return f'{what} {name!r} must be a bare file name inside the map directory'
    return ''
