"""Moved to vpr_ros.models.aggregators.boq (re-exported here for existing imports)."""
from vpr_ros.models.aggregators.boq import _heads, BoQ, BoQBlock, feature_map  # noqa: F401

__all__ = ['BoQ', 'BoQBlock']
