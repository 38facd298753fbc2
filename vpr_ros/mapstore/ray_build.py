"""Ray executor of ``build-map`` and of the gallery feature cache (``executor='ray'``): a pool
of restartable workers running the caller's own setup and work functions.

The driver lists the items (same sources as the local path) and streams batches of
``(key, image path or RGB array)`` to Ray actors that each load the gallery model once. At most
``PER_ACTOR`` batches per actor are in flight, so driver and object-store memory stay flat
however large the map; encoded rows come back in completion order into the build's
checkpoint path (rows are keyed, so order does not matter and resume works as locally).

Actors are created with ``max_restarts``/``max_task_retries``: an actor process that dies is
restarted by Ray and its unfinished batches are re-run, so every image is encoded once.
Every node of a cluster needs the same Python environment (torch, timm, ...); the vpr_ros
sources and the checkpoint file are shipped by Ray when the address is a remote cluster.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence

log = logging.getLogger(__name__)
PER_ACTOR = 2          # batches queued per actor: one running, one ready to start
MAX_RESTARTS = 4
STARTUP_TIMEOUT_S = 900.0


def import_ray():
    """The ray module, or RuntimeError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RuntimeError("executor 'ray' needs Ray: pip install ray (see requirements.txt)"
                           ) from None
    return ray


def _is_remote(address: str) -> bool:
    return address not in ('', 'auto', 'local')


@contextlib.contextmanager
def ray_session(address: str = 'auto', num_cpus: Optional[int] = None):
    """Use the initialised Ray, or connect to/start one and shut it down on exit.

    ``address``: 'auto' (the cluster of ``ray start`` on this machine or $RAY_ADDRESS, else a
    new local one), 'local' (always a new local one) or HOST:PORT / ray://HOST:PORT.
    """
    token = os.environ.get('RAY_AUTH_TOKEN') or (Path.home() / '.ray' / 'auth_token').is_file()
    if _is_remote(address) and token:
        # clusters of recent Ray want the token; ray.init looks for it only with 'auto', and
        # the mode is read when ray is imported
        os.environ.setdefault('RAY_AUTH_MODE', 'token')
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    kw = dict(include_dashboard=False, configure_logging=False, log_to_driver=False)
    if _is_remote(address):
        import vpr_ros
        kw['runtime_env'] = {'py_modules': [str(Path(vpr_ros.__file__).parent)]}
    else:
        kw['num_cpus'] = num_cpus
    try:
        ray.init(address=None if address == 'auto' else address, **kw)
    except ConnectionError:
        if address != 'auto' or os.environ.get('RAY_ADDRESS'):
            raise
        # the cluster last started on this machine is gone (stale /tmp/ray bootstrap file)
        log.warning('no Ray cluster answers at the last known address; starting a local one')
        ray.init(address='local', **kw)
    try:
        yield ray
    finally:
        ray.shutdown()


def stream(ray, actors: Sequence, method: str, calls: Iterable[tuple]) -> Iterator:
    """Results of ``actor.method(*args)`` for each args of ``calls``, spread over the actors,
    at most PER_ACTOR in flight per actor, yielded as they complete."""
    inflight, load, pending = {}, [0] * len(actors), iter(calls)
    exhausted = False
    while True:
        while not exhausted and len(inflight) < PER_ACTOR * len(actors):
            args = next(pending, None)
            if args is None:
                exhausted = True
                break
            i = load.index(min(load))
            inflight[getattr(actors[i], method).remote(*args)] = i
            load[i] += 1
        if not inflight:
            return
        done, _ = ray.wait(list(inflight), num_returns=1)
        load[inflight.pop(done[0])] -= 1
        try:
            yield ray.get(done[0])
        except ray.exceptions.RayError as exc:
            raise RuntimeError(f'a Ray worker failed beyond its {MAX_RESTARTS} restarts: '
                               f'{exc}') from None


class Worker:
    """One Ray actor: ``setup(*args)`` once (e.g. load the gallery model), then
    ``run(*call)`` calls ``work(state, *call)``. The two functions come from the caller
    (module-level functions, sent by reference), so this executor imports no caller."""

    def __init__(self, setup, args, work):
        self.state, self.work = setup(*args), work

    def info(self):
        return (getattr(self.state, 'name', ''), int(getattr(self.state, 'dim', 0)),
                os.getpid())

    def run(self, *call):
        return self.work(self.state, *call)


def start_workers(ray, setup, args, work, count: int, name: str = ''):
    """``count`` restartable Worker actors (one CPU each) and their (name, dim, pid) infos."""
    opts = dict(num_cpus=1, max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS)
    cls = ray.remote(Worker)
    actors = [cls.options(**opts, **({'name': f'{name}_{i}'} if name else {})).remote(
        setup, args, work) for i in range(max(1, count))]
    try:
        infos = ray.get([a.info.remote() for a in actors], timeout=STARTUP_TIMEOUT_S)
    except BaseException:
        for a in actors:
            with contextlib.suppress(Exception):
                ray.kill(a)
        raise
    return actors, infos


def checkpoint_payload(path: str):
    """(file name, its bytes) of a checkpoint to ship to remote workers, or ('', None)."""
    if path and Path(path).is_file():
        return Path(path).name, Path(path).read_bytes()
    return '', None


def unpack_checkpoint(name: str, data: Optional[bytes]) -> str:
    """The worker-side path of a shipped checkpoint ('' when none was shipped)."""
    if data is None:
        return ''
    path = Path(tempfile.mkdtemp(prefix='vpr_ros_ray_')) / name
    path.write_bytes(data)
    return str(path)


class RayPool:
    """Workers at ``address`` running ``work`` over streamed calls; a context manager."""

    def __init__(self, setup, args, work, workers: int, address: str = 'auto', name: str = ''):
        self._session = ray_session(address)
        self.ray = self._session.__enter__()
        try:
            self.actors, infos = start_workers(self.ray, setup, args, work, workers, name)
        except BaseException:
            self._session.__exit__(None, None, None)
            raise
        self.name, self.dim = infos[0][0], infos[0][1]
        self.pids: List[int] = [i[2] for i in infos]

    def map(self, calls: Iterable[tuple]) -> Iterator:
        """Results of ``work(state, *call)`` in completion order (see ``stream``)."""
        return stream(self.ray, self.actors, 'run', calls)

    def close(self) -> None:
        for a in getattr(self, 'actors', ()):
            with contextlib.suppress(Exception):
                self.ray.kill(a)
        self.actors = []
        self._session.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
