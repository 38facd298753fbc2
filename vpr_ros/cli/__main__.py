"""``python -m vpr_ros.cli``: the same as ``vpr-ros``."""
import sys

from vpr_ros.cli import main

sys.exit(main())
