"""Geometric verification: the local feature store, re-ranking on rendered places, build-map
storing features, and the Localizer verifying (and re-ranking) its top-k."""
import json
import zipfile

import numpy as np
import pytest

from vpr_ros.config import MatcherConfig
from vpr_ros.verification.features import FeatureExtractor, LocalFeatures
from vpr_ros.verification.store import (FILE, LocalFeatureError, LocalFeatureStore,
                                        LocalFeatureWriter)
from vpr_ros.verification.verifier import Verifier, VerifySettings

SIZE = (320, 240)


def _feats(rng, n, width=128):
    return LocalFeatures(rng.uniform(0, 300, (n, 2)).astype(np.float32),
                         rng.integers(0, 255, (n, width), np.uint8), SIZE)


def test_store_round_trip_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    w = LocalFeatureWriter('rootsift', 64, encoder='enc')
    a, b = _feats(rng, 40), _feats(rng, 0)
    w.add(3, a, (200.0, 200.0, 159.5, 119.5))
    w.add(7, b)
    w.save(tmp_path)
    assert not list(tmp_path.glob('*.part'))
    s = LocalFeatureStore.load(tmp_path)
    assert len(s) == 2 and 3 in s and 5 not in s and s.method == 'rootsift'
    got = s.features(3)
    np.testing.assert_array_equal(got.desc, a.desc)
    np.testing.assert_allclose(got.xy, a.xy)
    assert got.size == SIZE and len(s.features(7)) == 0 and s.features(5) is None
    assert s.intrinsics(3)[0, 2] == 159.5 and s.intrinsics(7) is None
    assert LocalFeatureStore.load(tmp_path / 'nothing') is None  # map without features
    path = tmp_path / FILE
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])  # truncated
    with pytest.raises(LocalFeatureError, match='unreadable'):
        LocalFeatureStore.load(tmp_path)
    path.write_bytes(data)
    with zipfile.ZipFile(path) as z:  # a newer format version
        arrays = {n[:-4]: np.load(z.open(n)) for n in z.namelist()}
    header = json.loads(arrays['header'].tobytes())
    header['format_version'] = 99
    arrays['header'] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(LocalFeatureError, match='format 99'):
        LocalFeatureStore.load(tmp_path)


def _render_places():
    """Day views of three places 75 m apart; a day query of the middle one from another
    viewpoint (QUERY_VIEW: lateral, along, yaw, height and pitch changes)."""
    pytest.importorskip('moderngl')
    from vpr_ros.world import plan_route, Renderer, Town
    from vpr_ros.world.conditions import QUERY_VIEW
    town = Town.from_seed(2005)
    route = plan_route(town, 8, 25.0, seed=2005)
    try:
        with Renderer(town, SIZE, 2) as r:
            views = [r.render(route.place_pose(i), 'day') for i in (0, 3, 6)]
            query = r.render(route.place_pose(3, QUERY_VIEW, np.random.default_rng(1)), 'day',
                             noise_seed=0)
    except Exception as exc:  # no EGL on this machine
        pytest.skip(f'renderer unavailable: {exc}')
    return views, query


class _Store:
    """A LocalFeatureStore stand-in holding features in memory."""

    method, header = 'rootsift', {}

    def __init__(self, feats):
        self.feats = feats

    def features(self, pid):
        return self.feats[pid]

    def intrinsics(self, pid):
        return None


def test_verification_moves_the_right_place_first_on_rendered_views():
    views, day = _render_places()
    ext = FeatureExtractor('rootsift', 512)
    store = _Store({i: ext(v) for i, v in enumerate(views)})
    v = Verifier(store, VerifySettings(verify_top_k=3))
    # the global search put a wrong place first, the right one (1) last
    out = v.verify([0, 2, 1], [0.80, 0.78, 0.75], v.extract(day))
    assert out.order[0] == 2, (out.order, out.inliers)
    assert out.inliers[0] >= 50 > 3 * max(out.inliers[1:]), out.inliers
    assert out.scores[0] == pytest.approx(0.75 + 0.5)  # inliers feed the score (confidence)


def _vg_with_features(tmp_path, n=6):
    import cv2
    from vpr_ros.io.camera_file import pinhole_from_fov, write_camera_file
    from vpr_ros.io.vg import format_vg_name, VGRecord
    db = tmp_path / 'vg' / 'database'
    db.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = []
    for i in range(n):  # textured images SIFT finds keypoints in
        img = cv2.GaussianBlur(rng.integers(0, 255, (120, 160, 3), np.uint8), (0, 0), 1.5)
        r = VGRecord(path='', utm_e=500000.0 + 30 * i, utm_n=4000000.0, zone_number=33,
                     zone_letter='T', heading=90.0)
        cv2.imwrite(str(db / format_vg_name(r)), img)
        images.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    write_camera_file(tmp_path / 'vg', pinhole_from_fov(55.0, 160, 120))
    return tmp_path / 'vg', images


def test_build_map_stores_features_by_default_and_localizer_verifies(tmp_path):
    from vpr_ros.cli import main
    from vpr_ros.localization.localizer import Localizer
    vg, images = _vg_with_features(tmp_path)
    common = ['build-map', '--model', 'mobilenetv3_small', '--input', str(vg),
              '--input-size', '32', '32', '--no-progress', '--allow-random-weights']
    assert main(common + ['--out', str(tmp_path / 'm')]) == 0
    assert main(common + ['--out', str(tmp_path / 'n'), '--no-local-features']) == 0
    assert not (tmp_path / 'n' / FILE).exists()
    store = LocalFeatureStore.load(tmp_path / 'm')
    assert len(store) == 6 and store.intrinsics(0) is not None
    assert all(0 < len(store.features(i)) <= 512 for i in range(6))
    loc = Localizer(MatcherConfig(use_filter=False, top_k=3, verify_top_k=6)).open(
        str(tmp_path / 'm'))
    assert loc.verifying
    plain = Localizer(MatcherConfig(use_filter=False, verify=False)).open(str(tmp_path / 'm'))
    assert not plain.verifying
    desc = loc.store.descriptors_of(np.array([1]))[0].astype(np.float32)
    # a descriptor pointing at place 1, an image of place 4: verification moves 4 first
    m = loc.step(desc, 1.0, local=loc.query_features(images[4]), k=6)
    assert m.ids[0] == 4 and m.inliers[0] >= 50 and m.pose_source in ('verified', 'metric')
    assert m.estimate is not None and m.estimate.confidence > 0.9
    # given candidates with the wrong place first: verified, re-ranked, estimated
    given = loc.candidates(2.0, [1, 2, 3, 4, 5, 0], [0.9, 0.85, 0.8, 0.75, 0.7, 0.65])
    m = loc.estimate(loc.verify(given, loc.query_features(images[4])))
    assert m.ids.tolist()[:1] == [4] and m.scores[0] == pytest.approx(1.25)
    assert m.inliers[1:].max() * 4 < m.inliers[0] and m.positions[0, 0] == pytest.approx(120.0)
    p = plain.step(desc, 1.0, k=6)
    assert p.pose_source == 'place' and p.inliers is None
    assert Localizer(MatcherConfig(verify=False)).open(str(tmp_path / 'n')).verifying is False
    (tmp_path / 'm' / FILE).write_bytes(b'not a zip')  # damaged: the map still localizes
    bad = Localizer(MatcherConfig(use_filter=False)).open(str(tmp_path / 'm'))
    assert not bad.verifying and 'unreadable' in bad.verify_problem
    assert bad.step(desc, 2.0, local=None).pose_source == 'place'


def test_descriptor_message_fields_round_trip_and_refusals():
    from vpr_ros.verification.wire import pack, unpack
    f = _feats(np.random.default_rng(2), 10)
    p = pack('rootsift', f)
    got = unpack(p['local_method'], p['keypoints'].tolist(), p['local_descriptors'],
                 p['image_width'], p['image_height'], 'rootsift')
    np.testing.assert_array_equal(got.desc, f.desc)
    assert got.size == SIZE
    with pytest.raises(ValueError, match='map stores'):
        unpack('orb', p['keypoints'], p['local_descriptors'], 1, 1, 'rootsift')
    with pytest.raises(ValueError, match='whole'):
        unpack('rootsift', p['keypoints'], p['local_descriptors'][:-1], 1, 1, 'rootsift')


def test_putative_matches_equal_the_brute_force_ratio_and_mutual_test():
    from vpr_ros.verification.features import as_matchable
    from vpr_ros.verification.matching import putative_matches
    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, (300, 128), np.uint8)
    q = as_matchable(np.clip(base[:200] + rng.integers(0, 40, (200, 128)), 0, 255), 'rootsift')
    v = as_matchable(base[rng.permutation(300)], 'rootsift')
    d = np.linalg.norm(q[:, None] - v[None], axis=2)
    srt = np.sort(d, axis=1)
    best = np.argmin(d, axis=1)
    mutual = np.argmin(d, axis=0)[best] == np.arange(len(q))
    want = np.flatnonzero((srt[:, 0] < 0.85 * srt[:, 1]) & mutual)
    qi, vi = putative_matches(q, v, False)
    assert len(want) > 50 and qi.tolist() == want.tolist() and vi.tolist() == best[want].tolist()


def test_ransac_failure_inside_opencv_gives_no_inliers(monkeypatch):
    import cv2
    from vpr_ros.verification.matching import verify_pair

    def boom(*args, **kwargs):
        raise cv2.error('!model.empty()')
    monkeypatch.setattr(cv2, 'findFundamentalMat', boom)
    xy = np.random.default_rng(0).uniform(0, 300, (40, 2)).astype(np.float32)
    desc = np.eye(40, 128, dtype=np.float32)
    assert verify_pair(xy, desc, xy, desc).inliers == 0


@pytest.mark.parametrize('metric_pose, calls, calls2', [(False, 1, 2), (True, 3, 3)])
def test_early_exit_only_when_no_later_candidate_can_overtake(monkeypatch, metric_pose, calls,
                                                              calls2):
    from vpr_ros.verification import verifier as ver
    from vpr_ros.verification.matching import PairResult
    inliers = {0: 30, 1: 50, 2: 5, 3: 9, 4: 40}
    seen = []

    def fake(qxy, qd, vxy, vd, method):
        pid = int(vxy[0, 0])
        seen.append(pid)
        z = np.zeros((inliers[pid], 2), np.float32)
        return PairResult(z, z.copy(), inliers[pid])
    monkeypatch.setattr(ver, 'verify_pair', fake)
    store = _Store({i: LocalFeatures(np.full((10, 2), i, np.float32),
                                     np.zeros((10, 128), np.uint8), SIZE) for i in range(5)})
    v = Verifier(store, VerifySettings(verify_top_k=5, metric_pose=metric_pose))
    query = _feats(np.random.default_rng(0), 10)
    out = v.verify([0, 1, 2, 3, 4], [0.9, 0.8, 0.7, 0.6, 0.5], query)
    assert seen == list(range(calls)) and out.order[0] == 0
    seen.clear()  # unsorted scores (0.7 + bonus can overtake 0.6 + bonus): no exit at first
    out = v.verify([0, 4, 1, 2, 3], [0.6, 0.7, 0.5, 0.4, 0.3], query)
    assert seen == [0, 4, 1, 2, 3][:calls2] and out.order[0] == 1  # id 4: 40 inliers


def test_metric_pose_only_for_a_verified_best_candidate():
    from vpr_ros.verification.verifier import metric_pose_of, Verified
    v = Verifier(_Store({}), VerifySettings())
    weak = Verified(np.arange(2), np.zeros(2), np.array([12, 3]), [None, None])
    assert metric_pose_of(weak, None, v, None) == (None, 0.0)
