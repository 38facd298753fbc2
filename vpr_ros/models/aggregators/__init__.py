"""Aggregators: pool backbone features into a global descriptor, one file per aggregator.

Convolutional backbones give a feature map (B,C,H,W). Transformer backbones give a tuple
``(map (B,C,h,w), cls (B,C))``; GeM and BoQ use only the map of such a tuple.

Every aggregator (base.Aggregator) declares ``OPTIONS``, ``output_width(in_dim, **options)``
(its ``out_dim``) and ``fit_width(in_dim, dim, options)``. To add one: a file here with the
class, and a row in the table of the model family that uses it (e.g. dinov2.AGGREGATORS).
"""
from vpr_ros.models.aggregators.base import Aggregator, feature_map, TokenAggregator
from vpr_ros.models.aggregators.boq import BoQ
from vpr_ros.models.aggregators.gem import GeM, MultiScaleGeM
from vpr_ros.models.aggregators.region_gem import RegionGeM
from vpr_ros.models.aggregators.salad import SALAD
from vpr_ros.models.aggregators.tdda import TDDA
from vpr_ros.models.backbones.multiscale import MultiScale  # re-exported: was defined here

__all__ = ['Aggregator', 'BoQ', 'feature_map', 'GeM', 'MultiScale', 'MultiScaleGeM',
           'RegionGeM', 'SALAD', 'TDDA', 'TokenAggregator']
