"""query_encoder ``model: auto`` (the default): the recommended query network shipped for the
map's gallery model when there is one (the asymmetric pair out of the box), the map's own model
otherwise; 'map' / '' keep symmetric search one parameter away. The matcher takes a shipped
network's descriptors on its gallery's maps without accepted_encoders. All torch-free."""
import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from vpr_ros.config import MatcherConfig, QueryEncoderConfig
from vpr_ros.evaluation import EvalConfig
from vpr_ros.evaluation.offline import query_encoder_config
from vpr_ros.mapstore import MapStore, PlaceRecord
from vpr_ros.query_pipeline import with_map_model
from vpr_ros.shipped_queries import (accepted_query_networks, QUERY_PACKAGED,
                                     resolve_query_model, shipped_query_for)

SHIPPED = next(iter(QUERY_PACKAGED.values()))


@pytest.fixture(autouse=True)
def recommended(monkeypatch):
    """The rules with SHIPPED recommended (whether the shipped one is, is its card's matter)."""
    import vpr_ros.shipped_queries as sq
    monkeypatch.setitem(sq.QUERY_PACKAGED, SHIPPED.name,
                        dataclasses.replace(SHIPPED, recommended=True))


def _map(path, encoder):
    with MapStore.create(path, encoder=encoder, dim=1280, dtype='float32',
                         encoder_source={'model': encoder, 'input_size': [168, 224]}) as store:
        store.add(np.eye(1, 1280, dtype=np.float32), [PlaceRecord(x=0.0, y=0.0, yaw=0.0)])
        store.save()
    return str(path)


def test_auto_is_the_default_of_the_node_and_of_evaluate():
    assert QueryEncoderConfig().model == 'auto' and EvalConfig().model == 'auto'


def test_resolution_rules(monkeypatch):
    import vpr_ros.shipped_queries as sq
    g = SHIPPED.gallery
    assert shipped_query_for(g).name == SHIPPED.name
    assert shipped_query_for('efficientnet_lite0_vpr') is None
    assert resolve_query_model('auto', g) == SHIPPED.name
    assert resolve_query_model('auto', 'efficientnet_lite0_vpr') == 'efficientnet_lite0_vpr'
    for symmetric in ('', 'map'):
        assert resolve_query_model(symmetric, g) == g
    assert resolve_query_model('efficientnet_lite0_gem', g) == 'efficientnet_lite0_gem'
    assert accepted_query_networks(g) == (SHIPPED.name,)
    assert accepted_query_networks('efficientnet_lite0_vpr') == ()
    # a network below the gallery floor is not picked by auto, but still usable by name
    monkeypatch.setitem(sq.QUERY_PACKAGED, SHIPPED.name, SHIPPED)
    if not SHIPPED.recommended:
        assert resolve_query_model('auto', g) == g
        assert shipped_query_for(g, recommended_only=True) is None
        assert accepted_query_networks(g) == (SHIPPED.name,)


def test_auto_against_real_maps(tmp_path):
    gallery_map = _map(tmp_path / 'g', SHIPPED.gallery)
    own_map = _map(tmp_path / 'o', 'efficientnet_lite0_vpr')
    cfg = QueryEncoderConfig(map_path=gallery_map)
    assert with_map_model(cfg).model == SHIPPED.name                  # asymmetric
    sym = with_map_model(dataclasses.replace(cfg, model='map'))
    assert sym.model == SHIPPED.gallery and sym.input_size == [168, 224]  # symmetric, as built
    own = with_map_model(QueryEncoderConfig(map_path=own_map))
    assert own.model == 'efficientnet_lite0_vpr' and own.input_size == [168, 224]
    # evaluate resolves the same way, and a checkpoint still overrides the model
    assert query_encoder_config(EvalConfig(map=gallery_map), SHIPPED.gallery).model == \
        SHIPPED.name
    assert query_encoder_config(EvalConfig(map=gallery_map, checkpoint='q.pt'),
                                SHIPPED.gallery).model == ''
    assert MatcherConfig().accepted_encoders == []  # nothing to list for shipped pairs


def test_the_table_imports_no_torch():
    code = ('import sys, vpr_ros.shipped_queries, vpr_ros.config; '
            'print("torch" in sys.modules)')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == 'False'


def test_the_demo_runs_the_shipped_pair_by_default():
    from vpr_ros.graph.demo import DemoConfig, query_model
    cfg = DemoConfig()
    assert shipped_query_for(cfg.gallery_model) is not None and cfg.compare_symmetric
    assert query_model(cfg) == shipped_query_for(cfg.gallery_model).name
    assert query_model(dataclasses.replace(cfg, query_model='map')) == cfg.gallery_model
    assert query_model(dataclasses.replace(cfg, query_checkpoint='q.pt')) == ''


def test_similarity_levels_follow_the_query_network(tmp_path, monkeypatch):
    """The map's levels are its own model's space: they serve its own descriptors; a shipped
    query network brings its measured levels, any other network has no floor (and a note)."""
    import vpr_ros.shipped_queries as sq
    from vpr_ros.localization.localizer import Localizer
    path = tmp_path / 'm'
    with MapStore.create(path, encoder=SHIPPED.gallery, dim=1280, dtype='float32') as store:
        rng = np.random.default_rng(0)
        d = rng.standard_normal((6, 1280)).astype(np.float32)
        store.add(d / np.linalg.norm(d, axis=1, keepdims=True),
                  [PlaceRecord(x=10.0 * i, y=0.0, yaw=0.0) for i in range(6)])
        store.save()
    loc = Localizer(MatcherConfig(use_filter=False)).open(str(path))
    own = loc.levels
    assert np.isfinite(own.floor) and loc.levels_note == ''
    loc.use_query_network('someone_elses_query_net')
    assert loc.similarity_floor == float('-inf') and 'floor off' in loc.levels_note
    shipped = dataclasses.replace(SHIPPED, levels=(0.1, 0.5))
    monkeypatch.setitem(sq.QUERY_PACKAGED, SHIPPED.name, shipped)
    loc.use_query_network(SHIPPED.name)
    assert loc.levels.unrelated == 0.1 and loc.levels.nearest == 0.5 and loc.levels_note == ''
    assert abs(loc.similarity_floor - (0.1 + 0.4 * 0.4)) < 1e-9
    loc.use_query_network(SHIPPED.gallery)   # symmetric again: the map's own levels
    assert loc.levels == own
    loc.close()


def test_no_place_threshold_follows_the_setting_then_the_shipped_measurement():
    from vpr_ros.no_place import NoPlaceGate, prototype_frames
    from vpr_ros.shipped_queries import no_place_threshold
    assert no_place_threshold(SHIPPED.name) == SHIPPED.no_place_threshold > 0
    assert no_place_threshold('efficientnet_lite0_vpr') == 0.0      # not measured: no gate
    assert no_place_threshold('efficientnet_lite0_vpr', 0.9) == 0.9
    assert no_place_threshold(SHIPPED.name, -1.0) == 0.0            # turned off
    frames, kinds = prototype_frames((24, 32), per_kind=2)
    assert frames.shape == (len(kinds), 24, 32, 3) and frames.dtype == np.uint8

    class _Encoder:  # descriptor = mean colour: enough to exercise the gate's arithmetic
        input_size = (24, 32)

        def encode(self, rgb):
            d = rgb.reshape(len(rgb), -1, 3).mean(1) + 1.0
            return d / np.linalg.norm(d, axis=1, keepdims=True)

    gate = NoPlaceGate.for_encoder(_Encoder(), 0.999)
    hit, sim, kind = gate.shows_no_place(_Encoder().encode(np.zeros((1, 24, 32, 3)))[0])
    assert hit and sim > 0.999 and kind == 'dark'
    with pytest.raises(ValueError, match='threshold'):
        NoPlaceGate.for_encoder(_Encoder(), 1.5)
