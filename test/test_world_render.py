"""Rendering: determinism from seeds, distinct towns and conditions, EGL failure message."""
import numpy as np
import pytest

from vpr_ros.world.camera import CameraPose
from vpr_ros.world.conditions import CONDITIONS
from vpr_ros.world.render import Renderer, RenderError, create_context
from vpr_ros.world.routes import plan_route
from vpr_ros.world.town import Town, TownSettings

SMALL = TownSettings(blocks_x=2, blocks_y=2)
SIZE = (64, 48)


def _pose(town):
    return plan_route(town, 3, 10.0).poses()[1]


@pytest.fixture(scope='module')
def town():
    return Town.from_seed(11, SMALL)


@pytest.fixture(scope='module')
def renderer(town):
    with Renderer(town, SIZE, supersample=1) as r:
        yield r


def test_same_seed_same_image(town, renderer):
    again = Town.from_seed(11, SMALL)
    assert np.array_equal(again.nodes, town.nodes)
    assert [b.height for b in again.buildings] == [b.height for b in town.buildings]
    pose = _pose(town)
    first = renderer.render(pose, 'day', noise_seed=3)
    assert first.shape == (48, 64, 3) and first.dtype == np.uint8
    assert np.array_equal(first, renderer.render(pose, 'day', noise_seed=3))
    with Renderer(again, SIZE, supersample=1) as other:  # a fresh GL context, same pixels
        assert np.array_equal(first, other.render(pose, 'day', noise_seed=3))


def test_different_seeds_different_towns(town, renderer):
    other = Town.from_seed(12, SMALL)
    assert not np.allclose(other.nodes, town.nodes)
    pose = _pose(town)
    with Renderer(other, SIZE, supersample=1) as r2:
        a = renderer.render(pose, 'day').astype(float)
        b = r2.render(pose, 'day').astype(float)
    assert np.abs(a - b).mean() > 5.0


def test_every_condition_is_nontrivial_and_differs_from_day(town, renderer):
    pose = _pose(town)
    day = renderer.render(pose, 'day').astype(float)
    for name in CONDITIONS:
        img = renderer.render(pose, name).astype(float)
        assert img.std() > 8.0, name  # structure, not a flat colour
        if name != 'day':
            assert np.abs(img - day).mean() > 6.0, name
    night = renderer.render(pose, 'night').astype(float)
    assert night.mean() < day.mean() - 20


def test_supersampling_and_occluders_change_pixels(town, renderer):
    pose = _pose(town)
    plain = renderer.render(pose, 'day', noise_seed=1).astype(float)
    x, y = pose.x + 12 * np.cos(pose.yaw), pose.y + 12 * np.sin(pose.yaw)
    car = np.array([[x, y, pose.yaw, 4.5, 1.8, 1.6, 0.8, 0.1, 0.1, 0]])
    occluded = renderer.render(pose, 'day', car, noise_seed=1).astype(float)
    assert np.abs(occluded - plain).max() > 60  # a red car in front of the camera
    with Renderer(town, SIZE, supersample=2) as r2:
        assert r2.render(pose, 'day').shape == (48, 64, 3)


def test_missing_egl_is_a_clear_error(monkeypatch):
    import moderngl

    def broken(**kwargs):
        raise Exception('libEGL.so.1: cannot open shared object file')
    monkeypatch.setattr(moderngl, 'create_standalone_context', broken)
    with pytest.raises(RenderError, match='EGL'):
        create_context()


def test_vertex_formats_match_the_mesh_stride():
    from vpr_ros.world.mesh import FLOATS_PER_VERTEX
    from vpr_ros.world.render import POSITION_ONLY_FORMAT, VERTEX_FORMAT, format_bytes
    assert format_bytes(VERTEX_FORMAT) == 4 * FLOATS_PER_VERTEX
    assert format_bytes(POSITION_ONLY_FORMAT) == 4 * FLOATS_PER_VERTEX


def test_sun_casts_shadows(town, renderer):
    import dataclasses
    from vpr_ros.world.conditions import get_condition
    pose = _pose(town)
    low_sun = dataclasses.replace(get_condition('day'), sun_elev_deg=15.0, noise=0)
    shadowed = renderer.render(pose, low_sun).astype(float)
    renderer.shadows = False
    try:
        unshadowed = renderer.render(pose, low_sun).astype(float)
    finally:
        renderer.shadows = True
    darker = (unshadowed - shadowed).mean(axis=2)
    assert (darker > 20).mean() > 0.05  # a real share of the view lies in shadow
    assert (darker < -2).mean() < 0.01  # shadows only ever darken


def test_pose_heading_convention():
    assert CameraPose(0, 0, yaw=0.0).heading_deg == pytest.approx(90.0)   # facing east
    assert CameraPose(0, 0, yaw=np.pi / 2).heading_deg == pytest.approx(0.0)  # north
