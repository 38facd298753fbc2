"""Moved to vpr_ros.models.aggregators.salad (re-exported here for existing imports)."""
from vpr_ros.models.aggregators.salad import SALAD, sinkhorn_assignment  # noqa: F401

__all__ = ['SALAD', 'sinkhorn_assignment']
