"""vpr-ros run: starts the graph's nodes as processes, stops them all together."""
import signal
import subprocess
import sys
import time

from node_fixtures import write_params
from ros_harness import python_env, wait_for


def start(args, log):
    return subprocess.Popen([sys.executable, '-m', 'vpr_ros', 'run', *args], stdout=log,
                            stderr=subprocess.STDOUT, env=python_env(), start_new_session=True)


def children_of(pid: int):
    import psutil
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_ctrl_c_stops_every_node(tmp_path, test_model):
    model, size = test_model
    params = write_params(tmp_path / 'p.yaml', model, size, '', )
    log = open(tmp_path / 'run.log', 'w')
    proc = start(['localize', '--params-file', params, '--set', 'matcher.top_k:=3',
                  '--set', 'query_encoder.descriptor_topic:=launcher_test/descriptor'], log)
    kids = wait_for(lambda: len(children_of(proc.pid)) >= 3 and children_of(proc.pid), 30,
                    what='three node processes')
    wait_for(lambda: 'ready' in (tmp_path / 'run.log').read_text(), 120, what='encoder ready')
    cmdlines = [' '.join(k.cmdline()) for k in kids]
    assert any('vpr_ros.nodes.matcher' in c and 'top_k:=3' in c for c in cmdlines)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0
    time.sleep(0.5)
    assert not any(k.is_running() and k.status() != 'zombie' for k in kids)
    log.close()


def test_one_node_dying_stops_the_rest(tmp_path, test_model):
    model, size = test_model
    # query_encoder refuses to start: its map_path does not exist.
    params = write_params(tmp_path / 'p.yaml', model, size, tmp_path / 'missing_map')
    log = open(tmp_path / 'run.log', 'w')
    proc = start(['localize', '--params-file', params], log)
    assert proc.wait(120) == 1
    log.close()
    text = (tmp_path / 'run.log').read_text()
    assert 'query_encoder exited with code 1' in text
    assert 'could not start' in text
    assert not children_of(proc.pid)


def test_namespace_accepts_both_forms():
    from vpr_ros.graph.launcher import node_command, normalize_namespace
    assert normalize_namespace('robot1') == normalize_namespace('/robot1/') == '/robot1'
    assert normalize_namespace('') == normalize_namespace('/') == ''
    assert '__ns:=/fleet/robot1' in node_command('matcher', 'matcher', 'p.yaml', [],
                                                 namespace='fleet/robot1')
    import pytest
    with pytest.raises(ValueError, match='namespace'):
        normalize_namespace('1robot')


def test_respawn_restarts_a_dead_node(tmp_path, test_model):
    model, size = test_model
    params = write_params(tmp_path / 'p.yaml', model, size, '')
    log = open(tmp_path / 'run.log', 'w')
    proc = start(['localize', '--params-file', params, '--respawn', '--respawn-delay', '0.2',
                  '--namespace', 'respawn_test'], log)
    try:
        def matcher():
            import psutil
            for k in children_of(proc.pid):
                try:
                    if 'vpr_ros.nodes.matcher' in ' '.join(k.cmdline()):
                        return k
                except psutil.Error:  # a zombie between its death and the restart
                    pass
            return None
        first = wait_for(matcher, 60, what='matcher process')
        first.kill()
        second = wait_for(lambda: (m := matcher()) is not None and m.pid != first.pid and m,
                          60, what='matcher restarted')
        assert proc.poll() is None and second.is_running()
        assert 'matcher exited with code -9; restarting it' in (tmp_path / 'run.log').read_text()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
