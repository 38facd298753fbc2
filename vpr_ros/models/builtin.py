"""Imports every module that registers models (one line per module)."""
from vpr_ros.models import timm_backbones  # noqa: F401
