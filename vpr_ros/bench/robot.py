"""The robot-side install measured (``vpr-ros bench-robot``): a fresh venv made from
requirements-robot.txt (no torch), its size, and the nodes run from it.

A robot runs vpr_ros from this source tree (or ``pip install --no-deps .``) with the generated
interfaces (``vpr_ros.msg``/``srv``, built once by colcon) and that venv: ``robot_env`` is the
environment ``scripts/env.sh`` gives with ``VPR_ROS_VENV`` set to it.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding vpr_ros/


def tree_size_mb(path) -> float:
    """Disk use of ``path`` like ``du -s`` (allocated blocks; hard links counted once)."""
    seen, total = set(), 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return round(total / 2**20, 1)


def interfaces_prefix() -> Path:
    """The install prefix of the generated vpr_ros interfaces (…/install/vpr_ros)."""
    spec = importlib.util.find_spec('vpr_ros.msg')
    if spec is None or not spec.origin:
        raise RuntimeError('the vpr_ros interfaces are not built: run `make setup` (colcon)')
    # <prefix>/lib/pythonX.Y/site-packages/vpr_ros/msg/__init__.py
    return Path(spec.origin).resolve().parents[5]


def interfaces_site(prefix: Path) -> Path:
    return next(prefix.glob('lib/python3*/site-packages'))


def create_venv(dest: Path, requirements: List[str], log=print) -> Dict:
    """``python -m venv dest`` and ``pip install -r`` each requirements file (the package
    registry the machine's pip is configured for); seconds taken."""
    t = time.perf_counter()
    subprocess.run([sys.executable, '-m', 'venv', str(dest)], check=True)
    cmd = [str(dest / 'bin' / 'python'), '-m', 'pip', 'install', '-q']
    for r in requirements:
        cmd += ['-r', str(r)]
    log(f'[bench-robot] {" ".join(cmd[2:])} into {dest} ...')
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f'pip install failed:\n{res.stderr[-3000:]}')
    return {'install_s': round(time.perf_counter() - t, 1)}


def robot_env(venv: Path, base=None) -> Dict[str, str]:
    """Environment running vpr_ros from this tree with ``venv``'s interpreter and packages
    (what ``VPR_ROS_VENV=venv source scripts/env.sh`` sets)."""
    env = dict(os.environ if base is None else base)
    prefix = interfaces_prefix()
    env.pop('PYTHONHOME', None)
    env['VIRTUAL_ENV'] = str(venv)
    env['PATH'] = os.pathsep.join([str(venv / 'bin'), env.get('PATH', '')])
    env['PYTHONPATH'] = os.pathsep.join([str(SOURCE_ROOT), str(interfaces_site(prefix))])
    env['LD_LIBRARY_PATH'] = os.pathsep.join(
        p for p in [str(prefix / 'lib'), env.get('LD_LIBRARY_PATH', '')] if p)
    env['AMENT_PREFIX_PATH'] = os.pathsep.join([str(prefix), str(venv)])
    env['VPR_ROS_SHARE'] = str(SOURCE_ROOT)
    return env


def importable(python: str, module: str, env: Dict[str, str]) -> bool:
    """Whether ``python`` can import ``module`` in ``env``."""
    code = f'import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)'
    return subprocess.run([python, '-c', code], env=env, capture_output=True).returncode == 0


def install_sizes(venv: Path) -> Dict[str, float]:
    """MB on disk: the venv, the vpr_ros package (sources and packaged weights) and the
    generated interfaces (libraries and Python modules), and their total."""
    prefix = interfaces_prefix()
    site = interfaces_site(prefix) / 'vpr_ros'
    iface = sum(tree_size_mb(p) for p in [site / 'msg', site / 'srv'] if p.is_dir())
    iface += sum(round(f.stat().st_blocks * 512 / 2**20, 1)
                 for f in (prefix / 'lib').glob('*.so'))
    out = {'venv_mb': tree_size_mb(venv), 'vpr_ros_mb': tree_size_mb(SOURCE_ROOT / 'vpr_ros'),
           'interfaces_mb': round(iface, 1)}
    out['total_mb'] = round(sum(out.values()), 1)
    return out


def build_map(path: Path, gallery: str, images, spacing_m: float = 5.0) -> Dict:
    """A map of ``images`` (place i at x = i * spacing) encoded by the gallery model ``gallery``
    (torch, on the development side, as maps are made)."""
    import numpy as np
    from vpr_ros.mapstore import MapStore, PlaceRecord
    from vpr_ros.models.runtime import load_encoder
    enc = load_encoder(model=gallery)
    t = time.perf_counter()
    descs = np.concatenate([enc.encode(img) for img in images])
    store = MapStore.create(path, encoder=enc.name, dim=enc.dim, dtype='float32',
                            encoder_source={'model': gallery, 'input_size': list(enc.input_size)})
    store.add(descs, [PlaceRecord(x=i * spacing_m, y=0.0, yaw=0.0, robot_id='bench',
                                  session='s0', source='bench') for i in range(len(images))])
    store.save()
    store.close()
    return {'places': len(images), 'encoder': enc.name, 'encode_s': round(time.perf_counter() - t,
                                                                          1)}
