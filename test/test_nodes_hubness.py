"""The matcher node with the map-side hubness correction, over real DDS: a hub map entry that
takes the plain search loses it to the true place once the reference file is given; a
reference made for another map model is refused with a clear message, the node stays up."""
import numpy as np
import yaml
from builtin_interfaces.msg import Time

from ros_harness import NodeProcess, RosClient, wait_for
from vpr_ros.hubness import save_reference
from vpr_ros.msg import Descriptor, PlaceMatch

D = 32


def _unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _world(rng):
    """(map descriptors: entry 0 a hub near the queries' common direction, then 6 places;
    queries of places 1..6; reference query descriptors of 200 other places)."""
    common = np.eye(D, dtype=np.float32)[0]
    mask = np.r_[0.0, np.ones(D - 1)].astype(np.float32)
    places = _unit(rng.standard_normal((6, D)) * mask)
    hub = _unit(common + 0.01 * rng.standard_normal(D))
    queries = _unit(0.55 * places + 0.65 * common)
    reference = _unit(0.55 * _unit(rng.standard_normal((200, D)) * mask) + 0.65 * common)
    return np.concatenate([hub[None], places]), queries, reference


def _map(path, descs, encoder='tiny_gallery'):
    from vpr_ros.mapstore import MapStore, PlaceRecord
    store = MapStore.create(path, encoder=encoder, dim=D, dtype='float32')
    store.add(descs, [PlaceRecord(x=30.0 * i, y=0.0, yaw=0.0, robot_id='m', session='s',
                                  source='test') for i in range(len(descs))])
    store.save()
    store.close()


def _params(path, ns, map_path, **extra):
    body = {'map_path': str(map_path), 'top_k': 3, 'use_filter': False,
            'map_reload_period_s': 0.5, **extra}
    with open(path, 'w') as f:
        yaml.safe_dump({f'/{ns}/matcher_{ns}': {'ros__parameters': body}}, f)
    return str(path)


def test_matcher_applies_the_hubness_reference_and_refuses_a_foreign_one(tmp_path):
    rng = np.random.default_rng(0)
    descs, queries, reference = _world(rng)
    _map(tmp_path / 'map', descs)
    save_reference(tmp_path / 'ref.npz', reference, 'tiny_query', 'tiny_gallery', k=10)
    save_reference(tmp_path / 'other.npz', reference, 'tiny_query', 'another_gallery', k=10)
    nodes = {ns: NodeProcess('matcher', _params(tmp_path / f'{ns}.yaml', ns, tmp_path / 'map',
                                                **kw),
                             tmp_path, name=f'matcher_{ns}', namespace=f'/{ns}')
             for ns, kw in (('plain', {'accepted_encoders': ['tiny_query']}),
                            # tiny_query is accepted as the reference's query network
                            ('hub', {'hubness_reference': str(tmp_path / 'ref.npz'),
                                     'accepted_encoders': ['another_query']}),
                            ('foreign', {'hubness_reference': str(tmp_path / 'other.npz')}))}
    client = RosClient('hubness_client')
    try:
        got = {ns: client.collect(PlaceMatch, f'/{ns}/vpr/match') for ns in ('plain', 'hub')}
        pubs = {ns: client.node.create_publisher(Descriptor, f'/{ns}/vpr/descriptor', 10)
                for ns in nodes}
        wait_for(lambda: all(client.node.count_subscribers(f'/{ns}/vpr/descriptor') > 0
                             for ns in nodes), 60, what='matchers subscribed')
        wait_for(lambda: 'with the hubness correction' in nodes['hub'].log(), 60,
                 what='the hub matcher loading its map')

        def send(i):
            for pub in pubs.values():
                msg = Descriptor(encoder='tiny_query', descriptor=queries[i].tolist())
                msg.header.stamp = Time(sec=i + 1)
                pub.publish(msg)
        for i in range(len(queries)):
            wait_for(lambda: (send(i) or True) and all(
                any(m.header.stamp.sec == i + 1 for m in got[ns]) for ns in got), 20,
                period=0.3, what=f'match of query {i}')
        for ns, want in (('plain', [0] * 6), ('hub', list(range(1, 7)))):
            top = {m.header.stamp.sec - 1: m.candidates[0].place_id for m in got[ns]}
            assert [top[i] for i in range(6)] == want, (ns, top)
        hub_scores = [c.score for m in got['hub'] for c in m.candidates]
        assert all(np.isfinite(hub_scores))
        wait_for(lambda: 'is for 32-d maps of' in nodes['foreign'].log(), 30,
                 what='the foreign reference refused')
        assert "'another_gallery'" in nodes['foreign'].log()
        assert 'made for' not in nodes['hub'].log()
        wrong = Descriptor(encoder='another_query', descriptor=queries[0].tolist())
        wait_for(lambda: pubs['hub'].publish(wrong) or
                 "descriptors from 'another_query', but hubness_reference was made for "
                 "'tiny_query'" in nodes['hub'].log(), 20, period=0.3,
                 what='the query network mismatch warned')
        assert all(n.alive() for n in nodes.values())
    finally:
        client.close()
        for n in nodes.values():
            n.stop()
