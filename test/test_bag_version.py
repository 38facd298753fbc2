"""Bags written by vpr_ros are rosbag2 version 8: Humble's `ros2 bag play` refuses version 9."""
import numpy as np
import pytest
import yaml

from vpr_ros.geo import MapOrigin
from vpr_ros.io import bag_writer
from vpr_ros.world import bagwriter
from vpr_ros.world.camera import CameraPose


def _rgb(i: int) -> np.ndarray:
    return np.full((24, 32, 3), 40 * i, np.uint8)


def _read_back(path):
    """metadata.yaml's version and the number of messages rosbags reads from the bag."""
    from rosbags.rosbag2 import Reader
    meta = yaml.safe_load((path / 'metadata.yaml').read_text())
    with Reader(path) as reader:
        count = sum(1 for _ in reader.messages())
    return meta['rosbag2_bagfile_information']['version'], count, meta


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_io_write_bag_is_version_8(tmp_path, storage):
    images = [(100.0 + i, _rgb(i)) for i in range(2)]
    poses = [(100.0 + i, float(i), 0.0, 0.0) for i in range(2)]
    bag = bag_writer.write_bag(tmp_path / 'bag', images, poses, storage=storage)
    version, count, meta = _read_back(bag)
    assert version == bag_writer.BAG_VERSION == 8
    assert meta['rosbag2_bagfile_information']['storage_identifier'] == storage
    assert count == 2 + 2 + 2  # images, poses, one /chatter per pose


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_world_bag_writer_is_version_8(tmp_path, storage):
    origin = MapOrigin.from_latlon(47.37, 8.54)
    frames = [(10**9 * (i + 1), CameraPose(x=float(i), y=0.0), _rgb(i)) for i in range(2)]
    bag = bagwriter.write_bag(tmp_path / 'bag', frames, origin, storage)
    version, count, meta = _read_back(bag)
    assert version == 8
    assert meta['rosbag2_bagfile_information']['storage_identifier'] == storage
    # per frame: compressed image, odom, gps fix, tf; plus one tf_static
    assert count == 2 * 4 + 1
