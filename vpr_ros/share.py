"""Where the package's config/ and launch/ folders are (installed or in the source tree)."""
from __future__ import annotations

import os
from pathlib import Path


def share_dir() -> Path:
    """The folder holding config/ and launch/: the ament share folder or the source tree."""
    env = os.environ.get('VPR_ROS_SHARE')
    if env:
        return Path(env)
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory('vpr_ros'))
    except Exception:  # no ament index (pip install, source tree)
        return Path(__file__).resolve().parent.parent
