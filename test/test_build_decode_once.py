"""build-map decodes each image once: the local features come from the encoder's decode and
equal, array for array, what the separate pass (build_local_features) stores; also after a
resumed build, and after resuming a build checkpointed without local features."""
import collections
import dataclasses
import json

import numpy as np
import pytest
import torch

from vpr_ros.cli import main
from vpr_ros.mapstore.build import build_map, BuildConfig
from vpr_ros.verification.store import FILE

MODEL = 'mobilenetv3_small'
N = 10


@pytest.fixture(scope='module')
def town(tmp_path_factory):
    """A rendered VG database of N images with a camera.json, plus one undecodable file."""
    root = tmp_path_factory.mktemp('decode_once')
    assert main(['world', '--seed', '3', '--out', str(root / 'T'), '--places', str(N),
                 '--conditions', 'day', '--formats', 'vg', '--size', '160x120',
                 '--quiet']) == 0
    db = root / 'T' / 'test' / 'database'
    assert len(list(db.glob('*.jpg'))) == N
    (db / '@500100.00@4000000.00@33@T@@@@@@@@@@@.jpg').write_bytes(b'\xff\xd8 cut')
    return root, root / 'T' / 'test'


def _cfg(vg, out, **kw):
    base = dict(model=MODEL, allow_random_weights=True, source='vg', input=str(vg),
                out=str(out), input_size=(32, 32), batch_size=3, workers=2, progress=False)
    return BuildConfig(**{**base, **kw})


def _reference(root, vg):
    """The features the separate pass stores for the same map (place ids in source order)."""
    from vpr_ros.imaging import ImageDecodeError, read_image_file
    from vpr_ros.mapstore.build import open_source
    from vpr_ros.verification.build import build_local_features
    out = root / 'reference'
    if not (out / FILE).is_file():
        out.mkdir()
        source = open_source(_cfg(vg, out))
        ok = []
        for key, item in enumerate(source):
            try:
                read_image_file(item.image)
                ok.append(key)
            except (ImageDecodeError, OSError):
                pass
        assert len(ok) == N
        build_local_features(source, {k: i for i, k in enumerate(ok)}, out, MODEL)
    return _arrays(out)


def _arrays(map_dir):
    with np.load(map_dir / FILE, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(arrays.pop('header').tobytes().decode()), arrays


def _assert_same(got, want):
    (gh, ga), (wh, wa) = got, want
    assert gh == wh and sorted(ga) == sorted(wa)
    assert gh['places'] == N and gh['keypoints'] > 0 and gh['method'] == 'rootsift'
    for k in wa:
        assert ga[k].dtype == wa[k].dtype and ga[k].shape == wa[k].shape, k
        assert ga[k].tobytes() == wa[k].tobytes(), k  # NaN intrinsics compare equal too


@pytest.fixture
def decodes(monkeypatch):
    """Counts of read_image_file calls per path, in the encoder and in a second pass."""
    import vpr_ros.imaging
    import vpr_ros.mapstore.build_encoders as enc
    counts = collections.Counter()
    real = vpr_ros.imaging.read_image_file

    def counting(path, *a, **kw):
        counts[str(path)] += 1
        return real(path, *a, **kw)
    monkeypatch.setattr(enc, 'read_image_file', counting)
    monkeypatch.setattr(vpr_ros.imaging, 'read_image_file', counting)
    return counts


def test_one_decode_per_image_and_the_features_of_the_second_pass(town, decodes):
    root, vg = town
    torch.manual_seed(0)
    summary = build_map(_cfg(vg, root / 'once'))
    assert summary['places'] == N and summary['images_failed'] == 1
    assert summary['local_features']['images_decoded_again'] == 0
    assert len(decodes) == N + 1 and set(decodes.values()) == {1}
    decodes.clear()
    _assert_same(_arrays(root / 'once'), _reference(root, vg))


def test_resumed_build_ends_with_the_same_features(town, decodes):
    root, vg = town

    def stop(done):
        raise KeyboardInterrupt(f'interrupted after {done}')
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        build_map(_cfg(vg, root / 'resumed', checkpoint_every=4), on_checkpoint=stop)
    chunk = next((root / 'resumed' / 'work').glob('chunk-*.npz'))
    with np.load(chunk) as z:
        checkpointed = len(z['keys']) + len(z['failed'])
        assert len(z['lf_keys']) == len(z['keys']) > 0
    decodes.clear()
    torch.manual_seed(0)
    summary = build_map(_cfg(vg, root / 'resumed', checkpoint_every=4))
    assert summary['images_resumed'] == checkpointed and summary['places'] == N
    assert summary['local_features']['images_decoded_again'] == 0
    assert sum(decodes.values()) == N + 1 - checkpointed  # only the images not checkpointed
    _assert_same(_arrays(root / 'resumed'), _reference(root, vg))


def test_resuming_a_build_checkpointed_without_features_decodes_those_again(town, decodes):
    root, vg = town
    out = root / 'mixed'

    def stop(done):
        raise KeyboardInterrupt(f'interrupted after {done}')
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):  # e.g. a work folder of an older vpr_ros
        build_map(_cfg(vg, out, checkpoint_every=4, local_features=False),
                  on_checkpoint=stop)
    with np.load(next((out / 'work').glob('chunk-*.npz'))) as z:
        assert len(z['lf_keys']) == 0
        without = len(z['keys'])
    torch.manual_seed(0)
    summary = build_map(_cfg(vg, out, checkpoint_every=4))
    again = summary['local_features']['images_decoded_again']
    assert summary['images_resumed'] >= 4 and 0 < again == without
    assert summary['places'] == N
    _assert_same(_arrays(out), _reference(root, vg))
    torch.manual_seed(0)
    plain = build_map(_cfg(vg, root / 'plain', local_features=False))
    assert 'local_features' not in plain and not (root / 'plain' / FILE).exists()


def test_ray_worker_path_carries_the_same_features(town):
    """The function every Ray actor runs (without a cluster): features of its own decode."""
    from vpr_ros.imaging import read_image_file
    from vpr_ros.mapstore.build_encoders import _own, _ray_encode, _ray_setup
    from vpr_ros.verification.build import default_extractor
    _, vg = town
    paths = sorted(str(p) for p in (vg / 'database').glob('*.jpg'))[:4]
    state = _ray_setup(dataclasses.asdict(_cfg(vg, '/nonexistent')), '', None)
    keys, desc, failed, listed, feats = _ray_encode(state, list(enumerate(paths)))
    assert listed == 4 and desc.shape[0] == len(keys) == len(feats)
    extract = default_extractor()
    for k, f in zip(keys, _own(feats)):
        want = extract(read_image_file(paths[k]))
        assert f.size == want.size and np.array_equal(f.xy, want.xy)
        assert np.array_equal(f.desc, want.desc) and f.desc.dtype == np.uint8
    off = _ray_setup(dataclasses.asdict(_cfg(vg, '/x', local_features=False)), '', None)
    assert _ray_encode(off, list(enumerate(paths)))[4] is None
