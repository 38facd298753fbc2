"""Persistent, versioned map store: places (SQLite), descriptors (memory-mapped) and a faiss
index, published atomically; plus the sources and builder that fill it offline."""
from vpr_ros.mapstore.dedup import DedupConfig
from vpr_ros.mapstore.manifest import MapError, read_manifest
from vpr_ros.mapstore.places import PlaceRecord
from vpr_ros.mapstore.store import MapStore

__all__ = ['DedupConfig', 'MapError', 'MapStore', 'PlaceRecord', 'read_manifest']
