"""The packaged asymmetric query networks (packaged.QUERY_PACKAGED): shipped weights, their
card, and descriptors that search the packaged gallery's map of a town never used to train or
choose them (held-out R@1 above the card's floor)."""
import json

import numpy as np
import pytest
import torch

from vpr_ros.models import packaged
from vpr_ros.models.checkpoint import gallery_compat, read_checkpoint
from vpr_ros.models.registry import create_model, get_spec, list_models

ENTRIES = list(packaged.QUERY_PACKAGED.values())


@pytest.fixture(scope='module', params=ENTRIES, ids=[e.name for e in ENTRIES])
def entry(request):
    return request.param


def _card(entry):
    return json.loads((packaged.WEIGHTS_DIR / f'{entry.name}.json').read_text())


def test_registered_query_network_with_small_float16_file(entry):
    spec = get_spec(entry.name)
    assert entry.name in list_models('query') and spec.role == 'query'
    assert spec.input_size == entry.input_size and spec.dim == 1280
    path = packaged.WEIGHTS_DIR / entry.file
    assert path.is_file() and path.stat().st_size < 20 * 2**20
    state, meta = read_checkpoint(str(path))
    assert meta['name'] == entry.name and meta['dim'] == 1280
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}
    card = _card(entry)
    assert card['name'] == entry.name and card['file'] == entry.file
    assert card['compatible_with']['encoder'] == entry.gallery
    assert not set(card['training']['query_town_seeds']) & set(card['evaluation']['seeds'])
    assert card['test_town_seed'] not in card['evaluation']['seeds']
    assert (packaged.WEIGHTS_DIR / f'{entry.name}.md').is_file()


def test_compatible_with_the_packaged_gallery_weights(entry):
    """The file names the gallery and the fingerprint of the packaged gallery's weights, so a
    map built with that gallery accepts it (and one built with other weights refuses it)."""
    _, meta = read_checkpoint(str(packaged.WEIGHTS_DIR / entry.file))
    gallery = create_model(entry.gallery, pretrained=True)
    assert meta['compatible_with'] == gallery_compat(gallery)


def test_pretrained_loads_the_shipped_weights(entry):
    model = create_model(entry.name, pretrained=True).eval()
    state, _ = read_checkpoint(str(packaged.WEIGHTS_DIR / entry.file))
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, state[k].to(v.dtype))
    with torch.no_grad():
        y = model(torch.zeros(1, 3, *entry.input_size))
    assert y.shape == (1, 1280) and abs(float(y.norm()) - 1.0) < 1e-4


@pytest.fixture(scope='module')
def town(tmp_path_factory, entry):
    """A small held-out town of the card's test seed: day map, seen and unseen queries."""
    pytest.importorskip('moderngl')
    from vpr_ros.world.generate import WorldConfig, generate_world
    card = _card(entry)
    out = tmp_path_factory.mktemp('query_town')
    generate_world(WorldConfig(seed=card['test_town_seed'], out=str(out),
                               places=card['test_town_places'], formats=('vg',),
                               conditions=('day', 'dusk', 'fog', 'night'), progress=False))
    return out / 'test'


def test_searches_the_gallery_map_of_a_new_town(entry, town):
    """Query-network descriptors of dusk / fog / night frames against the gallery model's day
    map: R@1 within 25 m at or above the card's floor (the measured value minus a margin)."""
    from vpr_ros.experiments.asym import recall as ev
    split = ev.read_split(town)
    gallery = create_model(entry.gallery, pretrained=True).eval()
    query = create_model(entry.name, pretrained=True).eval()
    db = ev.encode_paths(gallery, split.db_paths)
    q = ev.encode_paths(query, split.q_paths)
    hits = ev.recall_hits(q, db, split.q_xy, split.db_xy, 25.0, (1,))
    r1 = float(np.mean(hits[:, 0]))
    assert r1 >= _card(entry)['test_town_floor_r1'], r1


def test_recommended_and_levels_are_the_cards_measurements(entry):
    """``recommended`` (what model 'auto' picks) follows the measured share of the gallery's
    held-out R@1, and the matcher's similarity levels are the ones the card measured."""
    from vpr_ros.shipped_queries import RECOMMEND_SHARE
    card = _card(entry)
    assert card['recommended'] == entry.recommended
    levels = card['similarity_levels']
    if 'gallery_share' in card:
        rejects = isinstance(levels, dict) and max(levels['degenerate_max'].values()) < \
            levels['floor']
        assert (card['gallery_share'] >= RECOMMEND_SHARE and rejects) == entry.recommended
        rec = card['evaluation']['recall']
        tag = next(t for t in rec if t not in ('gallery_symmetric', 'symmetric_student'))
        share = rec[tag]['all']['R@1'] / rec['gallery_symmetric']['all']['R@1']
        assert abs(share - card['gallery_share']) < 1e-3
    if entry.levels:
        assert entry.levels == (levels['unrelated'], levels['nearest'])
        assert levels['real_below_floor'] < 0.01  # the floor keeps real frames
    else:
        assert isinstance(levels, str) and not entry.recommended
