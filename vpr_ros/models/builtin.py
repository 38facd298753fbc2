"""Imports every module that registers models (one line per module)."""
from vpr_ros.models import dinov2  # noqa: F401
from vpr_ros.models import efficientnet_lite  # noqa: F401
from vpr_ros.models import timm_backbones  # noqa: F401
from vpr_ros.models import cricavpr, d2vpr  # noqa: F401
from vpr_ros.models import packaged  # noqa: F401
