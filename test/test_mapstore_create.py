"""A failed MapStore.create leaves the folder usable: nothing half-written; create works next."""
from unittest import mock

import pytest

from vpr_ros.mapstore import persist
from vpr_ros.mapstore.store import MapStore


def test_failed_create_leaves_a_usable_folder(tmp_path):
    root = tmp_path / 'map'
    real = persist.write_version

    def crash(*a, **kw):
        real(*a, **kw)
        raise OSError('disk full')

    with mock.patch.object(persist, 'write_version', crash):
        with pytest.raises(OSError, match='disk full'):
            MapStore.create(root, 'enc', 8)
    assert [p.name for p in root.iterdir()] == []
    store = MapStore.create(root, 'enc', 8)
    assert store.manifest['num_places'] == 0
    store.close()


def test_stale_lock_file_does_not_block_create(tmp_path):
    root = tmp_path / 'map'
    root.mkdir()
    (root / '.writer.lock').write_text('')
    (root / 'descriptors-v1.npy.tmp').write_bytes(b'half')
    MapStore.create(root, 'enc', 8).close()
