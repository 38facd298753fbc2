"""Moved to vpr_ros.models.aggregators.tdda (re-exported here for existing imports)."""
from vpr_ros.models.aggregators.tdda import (  # noqa: F401
    Box, cross_image_encoder, fusion_mlp, MEDIUM_FROM_SMALL, region_bounds, region_boxes, TDDA)

__all__ = ['cross_image_encoder', 'fusion_mlp', 'MEDIUM_FROM_SMALL', 'region_bounds',
           'region_boxes', 'TDDA']
