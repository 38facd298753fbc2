"""The installed package through `ros2 run`, `ros2 interface` and `ros2 lifecycle`."""
import pytest

from node_fixtures import build_test_map, place_images
from ros2_tools import require_ros2, ros2, Ros2Process
from ros_harness import wait_for

NS = '/clitest'


@pytest.fixture(scope='module')
def map_dir(tmp_path_factory, test_model):
    require_ros2()
    model, size = test_model
    tmp = tmp_path_factory.mktemp('ros2cli')
    build_test_map(tmp / 'map', model, size, place_images(3, seed=5))
    return tmp


def test_interfaces_are_installed():
    require_ros2()
    out = ros2('interface', 'show', 'vpr_ros/msg/PlaceMatch')
    assert 'PlaceCandidate[] candidates' in out and 'float32 confidence' in out
    assert 'vpr_ros/srv/AddPlaces' in ros2('interface', 'package', 'vpr_ros')


def test_ros2_run_each_node(map_dir):
    mp = str(map_dir / 'map')
    procs = {exe: Ros2Process(['run', 'vpr_ros', exe, '--ros-args', '-r', f'__ns:={NS}',
                               '-p', f'map_path:={mp}'], map_dir / f'{exe}.log')
             for exe in ('query_encoder', 'gallery_server', 'matcher')}
    try:
        wait_for(lambda: 'ready' in procs['query_encoder'].log(), 240, what='query_encoder')
        wait_for(lambda: 'serving map' in procs['gallery_server'].log(), 60, what='gallery')
        wait_for(lambda: 'matching against' in procs['matcher'].log(), 60, what='matcher')
        # (the CLI without a daemon sees what it discovered in its spin time: ask again)
        wait_for(lambda: all(f'{NS}/{exe}' in ros2('node', 'list', '--no-daemon',
                                                   '--spin-time', '3') for exe in procs),
                 120, period=0.5, what='ros2 node list showing the three nodes')
        # the map's own model was chosen (no model parameter set)
        assert 'query network efficientnet_lite0_gem' in procs['query_encoder'].log()
    finally:
        codes = {exe: p.stop() for exe, p in procs.items()}
    assert codes == {exe: 0 for exe in procs}, {exe: p.log()[-2000:] for exe, p in procs.items()}


def lifecycle(node, verb, *args):
    """`ros2 lifecycle VERB NODE ARGS` (discovery given 2 s, as without a daemon it needs)."""
    for _ in range(10):  # a CLI without a daemon may miss a node it has not discovered yet
        out = ros2('lifecycle', verb, '--no-daemon', '--spin-time', '2', node, *args,
                   timeout=120, check=False)
        if 'Node not found' not in out:
            return out
    raise AssertionError(f'ros2 lifecycle {verb} {node}: node not found 10 times')


def test_managed_matcher_through_ros2_lifecycle(map_dir):
    node = f'{NS}/matcher'
    proc = Ros2Process(['run', 'vpr_ros', 'matcher', '--managed', '--ros-args', '-r',
                        f'__ns:={NS}', '-p', f'map_path:={map_dir / "map"}', '-p', 'top_k:=4'],
                       map_dir / 'managed.log')
    try:
        wait_for(lambda: 'unconfigured' in lifecycle(node, 'get'), 60, period=1.0,
                 what='managed matcher')
        # unconfigured: settings can still change (they are read on configure)
        assert 'successful' in ros2('param', 'set', '--no-daemon', '--timeout', '10', node,
                                    'top_k', '5')
        for transition, state in (('configure', 'inactive'), ('activate', 'active'),
                                  ('deactivate', 'inactive')):
            assert 'Transitioning successful' in lifecycle(node, 'set', transition)
            assert state in lifecycle(node, 'get')
        assert 'matching against' in proc.log()
        # configured: a setting read on configure is refused until cleanup
        out = ros2('param', 'set', '--no-daemon', '--timeout', '10', node, 'top_k', '6',
                   check=False)
        assert 'Setting parameter failed' in out
        assert 'Transitioning successful' in lifecycle(node, 'set', 'cleanup')
        assert 'unconfigured' in lifecycle(node, 'get')
        assert 'successful' in ros2('param', 'set', '--no-daemon', '--timeout', '10', node,
                                    'top_k', '6')
        assert 'Transitioning successful' in lifecycle(node, 'set', 'shutdown')
        assert 'finalized' in lifecycle(node, 'get')
    finally:
        proc.stop()
