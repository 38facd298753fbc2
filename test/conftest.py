"""Shared fixtures. Tests that talk over DDS use a private domain on loopback only."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ros_harness import isolate_ros_domain  # noqa: E402

isolate_ros_domain()

# Small, fast settings shared by the node tests: the offline-pretrained gallery model at a low
# input size, so that a map built here and the node's encoder agree exactly.
TEST_MODEL = 'efficientnet_lite0_gem'
TEST_INPUT = [96, 96]


@pytest.fixture(scope='session')
def test_model():
    return TEST_MODEL, TEST_INPUT
