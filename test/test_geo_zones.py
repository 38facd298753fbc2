"""Any number of UTM zones: map frames with far zones in local frames of their own, and a
two-zone VG split (MSLS-val as VPR-datasets-downloader names it: Copenhagen 33U + San
Francisco 10S) evaluated with the VG protocol's recall."""
import json
import math

import numpy as np
import pytest
import utm

from node_fixtures import place_images
from vpr_ros.cli import main
from vpr_ros.geo import heading_to_yaw, MapOrigin, zoned_latlon, zoned_utm

CPH, SF = (55.6761, 12.5683), (37.7749, -122.4194)


def test_heading_to_yaw_is_compass_to_rep103():
    assert heading_to_yaw(0.0) == pytest.approx(math.pi / 2)      # north
    assert heading_to_yaw(90.0) == pytest.approx(0.0)             # east
    assert heading_to_yaw(180.0) == pytest.approx(-math.pi / 2)   # south
    assert abs(heading_to_yaw(270.0)) == pytest.approx(math.pi)   # west
    assert math.isnan(heading_to_yaw(float('nan')))
    np.testing.assert_allclose(heading_to_yaw([45.0, 315.0]), [math.pi / 4, 3 * math.pi / 4])


def test_far_zones_get_their_own_local_frames_and_round_trip():
    o = MapOrigin.from_latlon(*CPH)
    lat = np.array([CPH[0] + 1e-3, SF[0], SF[0] + 1e-3, -33.87, CPH[0]])
    lon = np.array([CPH[1], SF[1], SF[1], 151.21, 17.5])   # same zone, far, far, south, next
    xy = o.latlon_to_xy(lat, lon)
    np.testing.assert_allclose(o.xy_to_latlon(xy), np.stack([lat, lon], 1), atol=1e-7)
    # within a far zone, distances are that zone's UTM distances (the VG protocol's)
    e = [utm.from_latlon(a, b) for a, b in zip(lat, lon)]
    assert np.linalg.norm(xy[2] - xy[1]) == pytest.approx(
        math.hypot(e[2][0] - e[1][0], e[2][1] - e[1][1]), abs=1e-6)
    assert np.abs(xy[1] - xy[0]).max() > 1e7 and np.abs(xy[3] - xy[1]).max() > 1e7
    # the next zone (33 -> 34 at 17.5 E) stays in the origin's continuous frame
    assert abs(xy[4, 0] - (17.5 - CPH[1]) * 111320 * math.cos(math.radians(CPH[0]))) < 2000
    # UTM names of any zone agree with their lat/lon
    got = o.utm_to_xy([v[0] for v in e], [v[1] for v in e], [v[2] for v in e],
                      [v[3] for v in e])
    np.testing.assert_allclose(got, xy, atol=1e-3)


def test_far_zone_slots_keep_maps_within_bounds():
    """with_frames: each far zone of the data gets a slot beyond the near points, UTM
    distances inside it, positions within the map bound; the origin survives JSON."""
    o = MapOrigin.from_latlon(*CPH)
    cities = [CPH, SF, (-33.87, 151.21), (35.68, 139.69), (40.71, -74.0), (-23.55, -46.63)]
    lat = np.array([c[0] + 1e-3 * k for c in cities for k in range(3)])
    lon = np.array([c[1] for c in cities for k in range(3)])
    framed = o.with_frames_latlon(lat, lon)
    assert len(framed.zones) == 5 and framed.with_frames_latlon(lat, lon) == framed
    xy = framed.latlon_to_xy(lat, lon)
    assert np.abs(xy).max() < 1e7
    for c in range(len(cities)):
        d = np.linalg.norm(xy[3 * c + 1] - xy[3 * c])
        e = [utm.from_latlon(lat[3 * c + k], lon[3 * c]) for k in (0, 1)]
        assert d == pytest.approx(math.hypot(e[1][0] - e[0][0], e[1][1] - e[0][1]), abs=1e-6)
    gaps = np.abs(xy[::3, None, 0] - xy[None, ::3, 0]) + np.eye(len(cities)) * 1e9
    assert gaps.min() > 2e5
    np.testing.assert_allclose(framed.xy_to_latlon(xy), np.stack([lat, lon], 1), atol=1e-7)
    again = MapOrigin(**json.loads(json.dumps(framed.as_dict())))
    assert again == framed
    with pytest.raises(ValueError, match='one map per region'):
        o.with_frames_latlon(np.zeros(58), np.arange(58) * 6.0 - 171.0)


def test_zoned_utm_needs_no_origin():
    a = zoned_latlon([CPH[0], SF[0]], [CPH[1], SF[1]])
    e, n, z, letter = utm.from_latlon(*SF)
    np.testing.assert_allclose(a[1], zoned_utm(e, n, z, letter)[0])
    assert abs(a[0, 0] - a[1, 0]) > 1e7


def _two_zone_split(root, images, spacing=30.0, offset=3.0):
    """database/ and queries/ of a Copenhagen + San Francisco split in the VG layout: place i
    (half in each city) is image i; its query is the same image ``offset`` m east."""
    import cv2
    from vpr_ros.io.vg import format_vg_name, VGRecord
    half = len(images) // 2
    for sub, dx in (('database', 0.0), ('queries', offset)):
        (root / sub).mkdir(parents=True)
        for i, img in enumerate(images):
            lat0, lon0 = CPH if i < half else SF
            e0, n0, zn, zl = utm.from_latlon(lat0, lon0)
            e, n = e0 + (i % half) * spacing + dx, n0
            lat, lon = utm.to_latlon(e, n, zn, zl)
            rec = VGRecord('', e, n, zn, zl, lat, lon, pano_id=f'x{i}', heading=90.0,
                           timestamp=f'{i:04d}', note='cph' if i < half else 'sf')
            cv2.imwrite(str(root / sub / format_vg_name(rec)), img[..., ::-1])


def _peer_recall(db_utm, q_utm, db_desc, q_desc, radius=25.0):
    """R@1 as gmberton/VPR-methods-evaluation computes it: UTM east/north of the names, a
    database image within ``radius`` m of the query is a positive."""
    top = np.argmax(q_desc @ db_desc.T, axis=1)
    d = np.linalg.norm(q_utm[:, None] - db_utm[None], axis=2)
    return float(np.mean([d[i, top[i]] <= radius for i in range(len(q_utm))]))


def test_two_zone_split_recall_equals_the_vg_protocol(tmp_path, test_model):
    from vpr_ros.imaging import read_image_file
    from vpr_ros.io.vg import list_vg_folder
    from vpr_ros.mapstore import MapStore
    from vpr_ros.mapstore.sources import VGSource
    from vpr_ros.models.runtime import load_encoder
    model, size = test_model
    images = place_images(8, size=(72, 96), seed=5)
    root = tmp_path / 'msls_val'
    _two_zone_split(root, images)
    src = VGSource(root)
    items = list(src)
    assert src.origin.zone_number == 33
    xs = np.array([it.place.x for it in items])
    assert [z[0] for z in src.origin.zones] == [10]            # San Francisco's slot
    assert np.all(np.abs(xs[4:] - xs[4]) < 100) and 2e5 < np.abs(xs[4] - xs[0]) < 1e7
    enc = load_encoder(model=model, input_size=tuple(size))
    descs = np.concatenate([enc.encode(read_image_file(it.image)) for it in items])
    with MapStore.create(tmp_path / 'map', encoder=enc.name, dim=enc.dim, dtype='float32',
                         origin=src.origin) as store:
        store.add(descs, [it.place for it in items])
        store.save()
    out = tmp_path / 'r'
    assert main(['evaluate', '--map', str(tmp_path / 'map'), '--vg', str(root / 'queries'),
                 '--input-size', *map(str, size), '--threads', '1', '--out', str(out)]) == 0
    rep = json.loads((out / 'report.json').read_text())
    assert rep['num_queries'] == 8 and rep['recall_at']['1'] == 1.0
    assert rep['recall_at_by_condition']['sf']['recall_at']['1'] == 1.0
    db, qs = list_vg_folder(root / 'database'), list_vg_folder(root / 'queries')
    q_desc = np.concatenate([enc.encode(read_image_file(r.path)) for r in qs])
    peer = _peer_recall(np.array([(r.utm_e, r.utm_n) for r in db]),
                        np.array([(r.utm_e, r.utm_n) for r in qs]), descs, q_desc)
    assert peer == rep['recall_at']['1'] == 1.0
