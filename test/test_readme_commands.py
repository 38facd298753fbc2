"""The README's tested command blocks (marked `<!-- readme-test -->`), run as a user copies
them, in order, in one empty folder: each command must succeed; the ones that start the node
graph (`vpr-ros run`, `ros2 launch`) must bring it up and stop cleanly on Ctrl-C."""
import os
import re
import signal
import subprocess
import time

import pytest

from ros2_tools import require_ros2
from ros_harness import REPO, wait_for

LONG_RUNNING = ('vpr-ros run ', 'ros2 launch ')


def readme_commands():
    """Commands of the marked ```bash blocks, continuation lines joined, comments dropped."""
    text = (REPO / 'README.md').read_text()
    blocks = re.findall(r'<!-- readme-test -->\n```bash\n(.*?)```', text, re.S)
    commands = []
    for block in blocks:
        for cmd in re.sub(r'\\\n\s*', ' ', block).splitlines():
            cmd = cmd.split(' #')[0].strip()
            if cmd and not cmd.startswith('#'):
                commands.append(cmd)
    return commands


def run_graph(cmd: str, cwd, log_path):
    """Start a graph command, wait until the query network is ready, Ctrl-C it, return the
    exit code and the log."""
    with open(log_path, 'w') as log:
        proc = subprocess.Popen('exec ' + cmd, shell=True, cwd=cwd, stdout=log,
                                stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            wait_for(lambda: ('ready' in log_path.read_text() and 'matching against' in
                              log_path.read_text()) or proc.poll() is not None, 300,
                     what=cmd)
            time.sleep(2.0)  # a user reads the log before pressing Ctrl-C
            os.killpg(proc.pid, signal.SIGINT)
            return proc.wait(60), log_path.read_text()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.mark.timeout(1200)  # a dozen commands: render, two maps with local features, evaluations
def test_readme_command_blocks_run_as_written(tmp_path):
    commands = readme_commands()
    assert len(commands) >= 6 and any(c.startswith('ros2 launch') for c in commands)
    if any(c.startswith('ros2 ') for c in commands):
        require_ros2()
    for i, cmd in enumerate(commands):
        if cmd.startswith('source '):  # the test process runs in that environment already
            assert (REPO / cmd.split()[1]).is_file(), cmd
            continue
        if cmd.startswith(LONG_RUNNING):
            code, log = run_graph(cmd, tmp_path, tmp_path / f'cmd{i}.log')
            assert 'ready' in log and 'matching against' in log, f'{cmd}:\n{log[-3000:]}'
            assert code == 0, f'{cmd} exited {code}:\n{log[-3000:]}'
            assert 'Traceback' not in log, log[-3000:]
            if 'maps/town' in cmd:  # the first map: built by the gallery, frames by the
                assert 'efficientnet_lite0_query_vpr24' in log, log[-3000:]  # query network
            continue
        res = subprocess.run(cmd, shell=True, cwd=tmp_path, capture_output=True, text=True,
                             timeout=600)
        assert res.returncode == 0, f'{cmd} exited {res.returncode}:\n{res.stdout[-3000:]}' \
                                    f'{res.stderr[-3000:]}'
