"""`vpr-ros evaluate` on a bag applies the camera -> base_link mount of the bag's /tf_static to
the priors, as the matcher's camera_x_m/camera_y_m/camera_yaw_rad parameters do (issue 32.4)."""
import dataclasses
import math

import numpy as np
import pytest

from vpr_ros.config import MatcherConfig
from vpr_ros.evaluation import EvalConfig
from vpr_ros.evaluation.offline import run_offline
from vpr_ros.io.bag_writer import write_bag
from vpr_ros.mapstore.build import build_map, BuildConfig

pytestmark = pytest.mark.timeout(300)
HALF = math.sqrt(0.5)
SIDE = [('base_link', 'camera_link', (0.5, 0.2, 1.0), (0.0, 0.0, HALF, HALF))]  # looks left
MOUNT = (0.5, 0.2, math.pi / 2)


def _bag(path, tf_static=()):
    rng = np.random.default_rng(3)
    imgs = [(100.0 + i, rng.integers(0, 255, (48, 64, 3), np.uint8)) for i in range(6)]
    poses = [(100.0 + i, 10.0 * i, 0.0, 0.0) for i in range(6)]  # base_link along +x
    return write_bag(path, imgs, poses, storage='sqlite3', image_frame='camera_link',
                     tf_static=tf_static)


@pytest.fixture(scope='module')
def side_camera(tmp_path_factory, test_model):
    model, _ = test_model
    tmp = tmp_path_factory.mktemp('side')
    bag = _bag(tmp / 'bag', SIDE)
    summary = build_map(BuildConfig(model=model, source='bag', input=str(bag),
                                    out=str(tmp / 'map'), input_size=(64, 64), keyframe_dist=0.0,
                                    keyframe_angle=0.0, progress=False))
    assert summary['frames']['camera_mount'] == pytest.approx(list(MOUNT))
    return tmp, bag


def _run(tmp, bag, out, **matcher):
    cfg = EvalConfig(map=str(tmp / 'map'), bag=str(bag), input_size=(64, 64),
                     out=str(tmp / out))
    m = dataclasses.replace(MatcherConfig(), use_filter=False, top_k=1, **matcher)
    return run_offline(cfg, m)


def test_prior_is_base_link_with_the_bag_mount(side_camera):
    tmp, bag = side_camera
    run = _run(tmp, bag, 'eval')
    ex = run.info['camera_extrinsics']
    assert ex['mount'] == pytest.approx(list(MOUNT))
    assert 'from /tf_static base_link -> camera_link' in ex['source']
    for f in run.frames:  # each frame matches its own place: the prior is base_link's pose
        assert f.ids[0] == f.index
        assert f.prior[:2] == pytest.approx(f.gt, abs=1e-3)
        assert abs(f.prior[2]) < 1e-3  # base_link heading (the camera looks +90 deg)


def test_matcher_parameters_without_tf_static_and_a_note_when_they_differ(side_camera,
                                                                          tmp_path):
    tmp, bag = side_camera
    plain = _bag(tmp_path / 'plain')  # the same frames, no /tf_static
    run = _run(tmp, plain, 'eval_params', camera_x_m=0.5, camera_y_m=0.2,
               camera_yaw_rad=math.pi / 2)
    ex = run.info['camera_extrinsics']
    assert ex['mount'] == pytest.approx(list(MOUNT)) and 'matcher parameters' in ex['source']
    assert all(abs(f.prior[2]) < 1e-3 for f in run.frames)
    run = _run(tmp, bag, 'eval_differ', camera_yaw_rad=0.3)
    assert 'the bag\'s was used' in run.info['camera_extrinsics']['note']
    from vpr_ros.evaluation.report import format_markdown, write_report
    rep = write_report(run, EvalConfig(map=str(tmp / 'map'), bag=str(bag),
                                       out=str(tmp_path / 'rep'), plots=False),
                       MatcherConfig(), np.zeros((6, 2)))
    assert 'camera -> base_link applied to the priors' in format_markdown(rep)
