"""Map sources: VG folders, CSV/JSON manifests and bags yield images with map-frame places."""
import json
import math

import cv2
import numpy as np
import pytest

from vpr_ros.io.vg import format_vg_name, VGRecord
from vpr_ros.mapstore.bag_source import BagSource
from vpr_ros.mapstore.sources import ManifestSource, SourceError, VGSource


def _img(seed):
    return np.random.default_rng(seed).integers(0, 255, (24, 32, 3), dtype=np.uint8)


def test_vg_source_map_frame_and_yaw(tmp_path):
    for sub in ('database', 'queries'):
        (tmp_path / sub).mkdir()
    for i in range(3):
        r = VGRecord(path='', utm_e=500000.0 + 10 * i, utm_n=4000000.0 + 5 * i,
                     zone_number=33, zone_letter='T', heading=0.0 if i else 90.0)
        cv2.imwrite(str(tmp_path / 'database' / format_vg_name(r)), _img(i))
    cv2.imwrite(str(tmp_path / 'queries' / format_vg_name(r)), _img(9))
    src = VGSource(tmp_path)
    items = list(src)
    assert len(items) == 3  # queries/ is not part of the map by default
    assert (src.origin.easting, src.origin.zone_number) == (500000.0, 33)
    assert (items[2].place.x, items[2].place.y) == pytest.approx((20.0, 10.0))
    assert items[0].place.yaw == pytest.approx(0.0)  # heading east
    assert items[1].place.yaw == pytest.approx(math.pi / 2)  # heading north
    assert math.isfinite(items[1].place.lat) and items[1].place.source == 'vg:database'
    assert len(list(VGSource(tmp_path, subsets=('database', 'queries')))) == 4


def test_csv_manifest_xy(tmp_path):
    (tmp_path / 'img').mkdir()
    cv2.imwrite(str(tmp_path / 'img' / 'a.png'), _img(0))
    (tmp_path / 'm.csv').write_text('image,x,y,yaw_deg,robot_id,session,stamp\n'
                                    'img/a.png,1.5,-2,90,r7,morning,12.5\n')
    (item,) = list(ManifestSource(tmp_path / 'm.csv'))
    assert item.image == str(tmp_path / 'img' / 'a.png')
    p = item.place
    assert (p.x, p.y, p.robot_id, p.session, p.stamp) == (1.5, -2.0, 'r7', 'morning', 12.5)
    assert p.yaw == pytest.approx(math.pi / 2)


def test_json_manifest_latlon(tmp_path):
    rows = [{'path': 'a.jpg', 'lat': 45.0, 'lon': 9.0, 'heading_deg': 180},
            {'path': 'b.jpg', 'lat': 45.0001, 'lon': 9.0}]
    (tmp_path / 'm.json').write_text(json.dumps({'images': rows}))
    src = ManifestSource(tmp_path / 'm.json')
    a, b = list(src)
    assert src.origin is not None and (a.place.x, a.place.y) == pytest.approx((0, 0), abs=1e-6)
    assert b.place.y == pytest.approx(11.1, rel=0.01)
    assert a.place.yaw == pytest.approx(-math.pi / 2)  # heading south


def test_manifest_errors(tmp_path):
    (tmp_path / 'bad.csv').write_text('file,x,y\na.png,1,2\n')
    with pytest.raises(SourceError, match='"image"'):
        ManifestSource(tmp_path / 'bad.csv')
    (tmp_path / 'nopos.csv').write_text('image,z\na.png,1\n')
    with pytest.raises(SourceError, match='x,y or lat,lon'):
        ManifestSource(tmp_path / 'nopos.csv')
    with pytest.raises(SourceError, match='does not exist'):
        ManifestSource(tmp_path / 'missing.json')


def test_bag_source_keyframes(tmp_path):
    from vpr_ros.io.bag_poses import KeyframeConfig
    from vpr_ros.io.bag_writer import write_bag
    imgs = [(100.0 + 0.5 * i, _img(i)) for i in range(20)]
    poses = [(100.0 + 0.1 * i, 0.2 * i, 0.0, 0.0) for i in range(100)]  # 1 m per image
    bag = write_bag(tmp_path / 'bag', imgs, poses, storage='sqlite3')
    src = BagSource(bag, keyframes=KeyframeConfig(dist_m=2.0, angle_deg=15),
                    robot_id='r1', session='s')
    items = list(src)
    assert [round(it.place.x) for it in items] == list(range(0, 20, 2))
    assert items[0].place.robot_id == 'r1' and items[0].image.shape == (24, 32, 3)
