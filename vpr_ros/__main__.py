"""``python -m vpr_ros`` is the ``vpr-ros`` command."""
import sys

from vpr_ros.cli import main

sys.exit(main())
