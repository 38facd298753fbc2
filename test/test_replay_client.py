"""ReplayClient.wait_for_graph: a node process that exits ends the wait at once, with its name."""
import time

import pytest

from vpr_ros.graph.replay import ReplayClient


def test_wait_for_graph_stops_when_a_node_has_exited():
    client = ReplayClient(image_topic='replay_test/image/compressed')
    try:
        t0 = time.monotonic()
        with pytest.raises(RuntimeError, match=r"\['matcher'\] exited"):
            client.wait_for_graph(timeout=60, dead=lambda: ['matcher'])
        assert time.monotonic() - t0 < 10
        with pytest.raises(TimeoutError, match='no subscriber'):
            client.wait_for_graph(timeout=0.3, dead=lambda: [])
    finally:
        client.close()
