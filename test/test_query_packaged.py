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
    gate = card.get('no_place_gate')
    if gate:  # the gate's threshold lies between the real and the no-place frames measured
        assert gate['real_max'] < entry.no_place_threshold == gate['threshold'] < \
            gate['no_place_min']
    else:
        assert entry.no_place_threshold == 0
    if 'gallery_share' in card:
        rejects = bool(gate) or (isinstance(levels, dict) and max(
            levels['degenerate_max'].values()) < levels['floor'])
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


def test_no_place_gate_separates_real_frames_from_no_place_frames(entry, town):
    """The gate's threshold (the card's) lies above every real frame of the new town and below
    every fresh no-place frame (black, white, gray, uniform, noise, blotches, gradients), as
    measured by the command the card names."""
    if not entry.no_place_threshold:
        pytest.skip(f'{entry.name} has no no-place gate')
    from vpr_ros.config import QueryEncoderConfig
    from vpr_ros.experiments.no_place_gate import measure
    from vpr_ros.query_pipeline import load_query_encoder
    encoder = load_query_encoder(QueryEncoderConfig(model=entry.name, threads=2))
    report = measure(encoder, [str(town)], progress=False)
    assert report['real_frames'] >= 4 * _card(entry)['test_town_places']
    assert report['real_max'] < entry.no_place_threshold < report['no_place_min'], report


def test_query_encoder_drops_no_place_frames_over_dds(entry, town, tmp_path):
    """The node with the shipped network publishes a descriptor for a street frame, none for a
    black or a noise frame (counted in ~/stats as no_place, reported in the log)."""
    if not entry.no_place_threshold:
        pytest.skip(f'{entry.name} has no no-place gate')
    import json as _json
    from sensor_msgs.msg import Image
    from std_srvs.srv import Trigger
    from node_fixtures import write_params
    from ros_harness import NodeProcess, RosClient, stop_all, wait_for, wait_started, warm_up
    from vpr_ros.experiments.asym.recall import read_split
    from vpr_ros.msg import Descriptor
    from vpr_ros.nodes.conversions import rgb_to_image
    from vpr_ros.training.gallery_cache import load_rgb
    params = write_params(tmp_path / 'p.yaml', entry.name, entry.input_size, '',
                          query_encoder={'image_qos': 'reliable', 'local_features': False})
    nodes = {'query_encoder': NodeProcess('query_encoder', params, tmp_path)}
    client = RosClient('no_place_client')
    try:
        got = client.collect(Descriptor, 'vpr/descriptor', 50)
        pub = client.node.create_publisher(Image, 'camera/image_raw', 10)
        wait_started(nodes, ('query_encoder',))
        assert 'no-place frame are dropped' in nodes['query_encoder'].log()

        def send(rgb, sec):
            msg = rgb_to_image(rgb)
            msg.header.stamp.sec = sec
            pub.publish(msg)

        street = load_rgb(read_split(town).q_paths[0])
        warm_up(lambda i: send(street, 1), lambda: got, what='a street frame descriptor')
        h, w = street.shape[:2]
        noise = np.random.default_rng(3).integers(0, 256, (h, w, 3), dtype=np.uint8)
        for sec, frame in ((100, np.zeros((h, w, 3), np.uint8)), (101, noise)):
            send(frame, sec)
            wait_for(lambda: _json.loads(client.call(Trigger, 'query_encoder/stats',
                                                     Trigger.Request()).message)['no_place']
                     >= sec - 99, 20, period=0.3, what=f'frame {sec} judged')
        send(street, 102)
        wait_for(lambda: any(m.header.stamp.sec == 102 for m in got), 20, what='street again')
        assert not any(m.header.stamp.sec in (100, 101) for m in got)
        assert 'shows no place' in nodes['query_encoder'].log()
    finally:
        stop_all(client, nodes)
