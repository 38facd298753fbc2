"""The cost curve's recall rows: a network searching its own map (symmetric points) or the map
another model encodes (the shipped asymmetric query networks against their gallery's map)."""
import numpy as np
import pytest

from vpr_ros.experiments.asym import recall as ev
from vpr_ros.experiments.asym.cost_curve import symmetric_recall


@pytest.fixture(scope='module')
def town(tmp_path_factory):
    pytest.importorskip('moderngl')
    from vpr_ros.world.generate import WorldConfig, generate_world
    out = tmp_path_factory.mktemp('cost_town')
    generate_world(WorldConfig(seed=2101, out=str(out), places=8, formats=('vg',),
                               conditions=('day', 'dusk', 'night'), size=(64, 48),
                               supersample=1, progress=False))
    return str(out / 'test')


def test_recall_against_its_own_map_or_a_given_one(town):
    from vpr_ros.models.registry import create_model
    model = create_model('efficientnet_lite0_vpr', pretrained=True, input_size=(48, 64)).eval()
    own = symmetric_recall(model, [town], ['dusk'])
    split = ev.read_split(town)
    assert own['queries'] == len(split.q_paths)
    assert {c for c in split.q_conditions} == {'dusk', 'night'}
    # the same map given explicitly: the same figures
    given = symmetric_recall(model, [town], ['dusk'], lambda paths: ev.encode_paths(model, paths))
    assert given == own
    # another model's map: its descriptors are searched (here unrelated unit vectors)
    seen = []

    def other(paths):
        seen.extend(paths)
        d = np.random.default_rng(0).normal(size=(len(paths), model.dim)).astype(np.float32)
        return d / np.linalg.norm(d, axis=1, keepdims=True)
    rand = symmetric_recall(model, [town], ['dusk'], other)
    assert seen == list(split.db_paths)
    assert rand['queries'] == own['queries']
    assert (rand['seen'], rand['unseen']) != (own['seen'], own['unseen'])
