"""Raw MSLS and GSV-Cities readers (vpr_ros/io/msls.py, gsv_cities.py) behind one dispatcher,
shared by build-map (--source msls|gsv-cities), training rows and distillation."""
import csv
import math

import cv2
import numpy as np
import pytest
import utm

from vpr_ros.bench.gsv_tree import generate_gsv_tree
from vpr_ros.io.datasets import detect_layout, read_dataset

CITIES = {'cph': (55.6761, 12.5683), 'sf': (37.7749, -122.4194)}


def write_msls(root, per_subset=4, spacing=30.0):
    """train_val/<city>/{database,query}/ as MSLS ships it: postprocessed.csv (UTM), raw.csv
    (lat/lon, compass angle, pano) and images/<key>.jpg; query j is database image j + 3 m;
    the last database image of each city is a panorama, query 1 is at night."""
    rng = np.random.default_rng(0)
    for city, (lat0, lon0) in CITIES.items():
        e0, n0, zn, zl = utm.from_latlon(lat0, lon0)
        for sub, dx in (('database', 0.0), ('query', 3.0)):
            d = root / 'train_val' / city / sub
            (d / 'images').mkdir(parents=True)
            post = [',key,easting,northing,unique_cluster,control_panel,night,view_direction']
            raw = [',key,lon,lat,ca,captured_at,pano']
            for j in range(per_subset):
                key = f'{city}{sub[0]}{j:03d}'
                e, n = e0 + j * spacing + dx, n0
                lat, lon = utm.to_latlon(e, n, zn, zl)
                night = sub == 'query' and j == 1
                pano = sub == 'database' and j == per_subset - 1
                post.append(f'{j},{key},{e},{n},{j},False,{night},Forward')
                raw.append(f'{j},{key},{lon},{lat},{90.0 * j},1500000000000,{pano}')
                img = cv2.resize(rng.integers(0, 256, (6, 8, 3), np.uint8), (64, 48))
                cv2.imwrite(str(d / 'images' / f'{key}.jpg'), img)
            (d / 'postprocessed.csv').write_text('\n'.join(post) + '\n')
            (d / 'raw.csv').write_text('\n'.join(raw) + '\n')
    return root


def test_msls_reader_two_cities_any_zone(tmp_path):
    root = write_msls(tmp_path / 'msls')
    assert detect_layout(root) == 'msls'
    db = read_dataset(root, subsets=('database',))
    assert len(db) == 6 and not any('d003' in r.path for r in db)        # panoramas skipped
    assert db.origin.zone_number == 33 and [z[0] for z in db.origin.zones] == [10]
    xy = np.array([(r.x, r.y) for r in db])
    np.testing.assert_allclose(xy[1] - xy[0], [30.0, 0.0], atol=1e-6)   # the CSV's UTM
    np.testing.assert_allclose(xy[4] - xy[3], [30.0, 0.0], atol=1e-6)   # SF: its own zone
    assert 2e5 < abs(xy[3, 0] - xy[0, 0]) < 1e7
    assert db[1].yaw == pytest.approx(0.0) and db[0].yaw == pytest.approx(math.pi / 2)
    q = read_dataset(root, subsets=('query',), origin=db.origin)   # queries in the map frame
    assert [r.condition for r in q].count('night') == 2
    qxy = np.array([(r.x, r.y) for r in q])
    d = np.linalg.norm(qxy[:, None] - xy[None], axis=2)
    assert (d.min(axis=1) <= 3.0 + 1e-6).sum() == 6      # 3 of 4 queries per city have a db
    one_city = read_dataset(root / 'train_val' / 'sf', subsets=('database', 'query'))
    assert len(one_city) == 7 and one_city.origin.zone_number == 10


def test_gsv_cities_reader_frames_and_places(tmp_path):
    root = generate_gsv_tree(tmp_path / 'gsv', 40, per_place=4)
    assert detect_layout(root) == 'gsv-cities'
    rows = read_dataset(root)
    assert len(rows) == 40 and len({r.place_id for r in rows}) == 10
    assert rows[0].yaw == pytest.approx(math.pi / 2)             # northdeg 0 -> +y
    assert rows[1].yaw == pytest.approx(0.0)                     # northdeg 90 -> +x
    xy = np.array([(r.x, r.y) for r in rows])
    assert np.abs(xy).max() < 1e7 and len(rows.origin.zones) == 3   # 4 cities, 4 zones
    ll = rows.origin.xy_to_latlon(xy)
    np.testing.assert_allclose(ll, [(r.lat, r.lon) for r in rows], atol=1e-7)
    with open(root / 'Dataframes' / 'Boston.csv') as f:
        assert next(csv.reader(f)) == ['place_id', 'year', 'month', 'northdeg', 'city_id',
                                       'lat', 'lon', 'panoid']


def test_training_rows_and_distill_read_the_same_readers(tmp_path):
    from vpr_ros.training.distill import PlaceFolder
    from vpr_ros.training.places import read_rows
    gsv = generate_gsv_tree(tmp_path / 'gsv', 24, per_place=4)
    rows = read_rows(gsv)
    assert len(rows.paths) == 24 and rows.places.max() == 5
    folder = PlaceFolder(str(gsv), (48, 64))
    assert folder.paths == rows.paths and folder.labels.tolist() == rows.places.tolist()
    msls = write_msls(tmp_path / 'msls')
    m = read_rows(msls, cell_m=20.0)
    assert len(m.paths) == 14 and set(m.conditions) == {'day', 'night'}
    # database image j and query j (3 m apart) share a grid place in the same city
    by_name = {p.rsplit('/', 1)[1][:-4]: c for p, c in zip(m.paths, m.places.tolist())}
    assert by_name['cphd000'] == by_name['cphq000'] != by_name['sfd000']
    assert len(PlaceFolder(str(msls), (48, 64))) == 14


@pytest.mark.parametrize('source', ['msls', 'gsv-cities'])
def test_build_map_from_dataset_sources(tmp_path, source, test_model):
    import json
    from vpr_ros.cli import main
    from vpr_ros.mapstore import MapStore
    model, size = test_model
    root = write_msls(tmp_path / 'd') if source == 'msls' else \
        generate_gsv_tree(tmp_path / 'd', 12, per_place=3)
    out = tmp_path / 'map'
    assert main(['build-map', '--model', model, '--source', source, '--input', str(root),
                 '--out', str(out), '--input-size', *map(str, size), '--workers', '1',
                 '--progress', 'false', '--dtype', 'float32', '--allow-random-weights']) == 0
    store = MapStore.open(out)
    try:
        assert store.num_places == (6 if source == 'msls' else 12)
        origin = json.loads((out / 'manifest.json').read_text())['origin']
        assert origin['zones'] and origin['zone_number'] in (33, 19)
        p = store.get_places(np.arange(store.num_places))
        assert all(abs(x.x) < 1e7 for x in p) and p[0].source.startswith(source)
    finally:
        store.close()
