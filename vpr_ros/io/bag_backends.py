"""Raw message access to bags: rosbags' AnyReader, plus sequential "salvage" readers for
rosbag2 files whose index or tail is damaged (a recording cut off mid-write).

Every backend offers ``topics`` ({topic: msgtype}), ``messages(topic)`` yielding
(msgtype, log_time_ns, raw bytes) and ``deserialize(raw, msgtype)``.
"""
from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Dict, Iterator, Tuple

log = logging.getLogger(__name__)


class AnyReaderBackend:
    """rosbags.highlevel.AnyReader: rosbag1 and rosbag2 (sqlite3, MCAP)."""

    def __init__(self, path: Path):
        from rosbags.highlevel import AnyReader
        self._r = AnyReader([path])
        self._r.open()
        self.topics: Dict[str, str] = {t: i.msgtype for t, i in self._r.topics.items()}

    def messages(self, topic: str) -> Iterator[Tuple[str, int, bytes]]:
        conns = [c for c in self._r.connections if c.topic == topic]
        for conn, t_ns, raw in self._r.messages(connections=conns):
            yield conn.msgtype, t_ns, raw

    def deserialize(self, raw, msgtype: str):
        return self._r.deserialize(raw, msgtype)

    def close(self) -> None:
        self._r.close()


class _CdrBackend:
    def __init__(self):
        from rosbags.typesys import get_typestore, Stores
        self._ts = get_typestore(Stores.LATEST)

    def deserialize(self, raw, msgtype: str):
        return self._ts.deserialize_cdr(raw, msgtype)

    def close(self) -> None:
        pass


class McapSalvage(_CdrBackend):
    """Reads an MCAP file front to back without its summary; stops at the damaged tail."""

    def __init__(self, file: Path):
        super().__init__()
        self.file = file
        self.topics: Dict[str, str] = {}
        self.error = ''
        for _ in self._records(index_only=True):
            pass

    def _records(self, index_only: bool = False):
        from mcap.records import Channel, Message, Schema
        from mcap.stream_reader import StreamReader
        schemas, self._chan = {}, {}
        with open(self.file, 'rb') as f:
            it = StreamReader(f).records
            while True:
                try:
                    rec = next(it)
                except StopIteration:
                    return
                except Exception as exc:  # truncated/damaged tail
                    self.error = f'{type(exc).__name__}: {exc}'
                    return
                if isinstance(rec, Schema):
                    schemas[rec.id] = rec.name
                elif isinstance(rec, Channel):
                    msgtype = schemas.get(rec.schema_id, '')
                    self._chan[rec.id] = (rec.topic, msgtype)
                    self.topics[rec.topic] = msgtype
                elif isinstance(rec, Message) and not index_only:
                    yield 'message', rec

    def messages(self, topic: str):
        self.error = ''
        for _kind, rec in self._records():
            t, msgtype = self._chan.get(rec.channel_id, ('', ''))
            if t == topic:
                yield msgtype, rec.log_time, rec.data
        if self.error:
            raise IOError(self.error)


class Sqlite3Salvage(_CdrBackend):
    """Reads a rosbag2 .db3 row by row; stops at the first unreadable page."""

    def __init__(self, file: Path):
        super().__init__()
        self.con = sqlite3.connect(f'file:{file}?mode=ro', uri=True)
        rows = self.con.execute('SELECT id, name, type FROM topics').fetchall()
        self._ids = {name: (tid, typ) for tid, name, typ in rows}
        self.topics = {name: typ for _tid, name, typ in rows}

    def messages(self, topic: str):
        tid, msgtype = self._ids[topic]
        cur = self.con.execute('SELECT timestamp, data FROM messages WHERE topic_id = ? '
                               'ORDER BY id', (tid,))
        for t_ns, data in cur:
            yield msgtype, t_ns, data

    def close(self) -> None:
        self.con.close()


def open_backend(path: Path):
    """AnyReader if the bag opens cleanly, else a salvage reader; (backend, warning or '')."""
    try:
        return AnyReaderBackend(path), ''
    except Exception as exc:
        first = exc
    files = [path] if path.is_file() else sorted(path.glob('*.mcap')) + sorted(path.glob('*.db3'))
    if len(files) == 1:
        f = files[0]
        try:
            backend = McapSalvage(f) if f.suffix == '.mcap' else Sqlite3Salvage(f)
        except Exception as exc:
            raise IOError(f'{first}; sequential read failed too ({exc})') from None
        if backend.topics:
            return backend, (f'bag index unreadable ({first}); reading {f.name} sequentially, '
                             f'messages after the damage are lost')
    raise IOError(str(first))
