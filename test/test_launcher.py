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
