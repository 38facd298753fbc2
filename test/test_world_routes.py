"""Routes: spacing, poses on the streets, viewpoint jitter, the kidnapped-robot jump."""
import numpy as np
import pytest

from vpr_ros.world.conditions import QUERY_VIEW
from vpr_ros.world.routes import drive, plan_route
from vpr_ros.world.town import Town, TownSettings


@pytest.fixture(scope='module')
def town():
    return Town.from_seed(4, TownSettings(blocks_x=3, blocks_y=3))


def _dist_to_streets(town, xy):
    best = np.inf
    for a, b in town.edges:
        p, q = town.nodes[a], town.nodes[b]
        t = np.clip(np.dot(xy - p, q - p) / np.dot(q - p, q - p), 0, 1)
        best = min(best, np.linalg.norm(p + t * (q - p) - xy))
    return best


def test_places_are_on_streets_and_spaced(town):
    route = plan_route(town, 20, 10.0, seed=1)
    assert np.allclose(np.diff(route.s), 10.0)
    poses = route.poses()
    xy = np.array([[p.x, p.y] for p in poses])
    steps = np.linalg.norm(np.diff(xy, axis=0), axis=1)
    assert steps.max() <= 10.0 + 1e-6 and np.median(steps) == pytest.approx(10.0, abs=0.1)
    for p in xy:  # the right-hand lane, within the carriageway
        assert _dist_to_streets(town, p) < town.settings.road_half_m
    assert route.poses() == poses  # deterministic


def test_query_views_are_shifted_but_near(town):
    route = plan_route(town, 10, 10.0, seed=1)
    db, q = route.poses(), route.poses(QUERY_VIEW, seed=2)
    d = np.array([np.hypot(a.x - b.x, a.y - b.y) for a, b in zip(db, q)])
    assert d.max() < 3.0 and d.mean() > 0.2
    assert any(abs(a.yaw - b.yaw) > 0.01 for a, b in zip(db, q))


def test_too_small_town_is_an_error():
    tiny = Town.from_seed(1, TownSettings(blocks_x=1, blocks_y=1))
    with pytest.raises(ValueError, match='too small'):
        plan_route(tiny, 500, 10.0)


def test_kidnap_has_one_large_jump(town):
    route = plan_route(town, 30, 10.0, seed=1)
    plain = drive(route, 1.0)
    kid = drive(route, 1.0, kidnap=True)

    def jumps(poses):
        xy = np.array([[p.x, p.y] for p in poses])
        return np.linalg.norm(np.diff(xy, axis=0), axis=1)
    assert jumps(plain).max() < 1.5
    big = jumps(kid) > 20.0
    assert big.sum() == 1
    assert np.argmax(big) == len(plain) // 2 - 1
