"""Backbones: images (B,3,H,W) -> features for an aggregator, one file per kind.

Each backbone has ``out_channels`` (the feature width an aggregator receives). ViT backbones
return ``(patch map (B,C,h,w), CLS (B,C))``; CNN backbones a map (B,C,H,W).
"""
from vpr_ros.models.backbones.adapted_vit import AdaptedViT, ConvBNReLU, MulConvAdapter
from vpr_ros.models.backbones.dinov2 import DINOv2Backbone
from vpr_ros.models.backbones.efficientnet_lite import LiteFeatures
from vpr_ros.models.backbones.multiscale import MultiScale
from vpr_ros.models.backbones.timm_cnn import TimmFeatureMap

__all__ = ['AdaptedViT', 'ConvBNReLU', 'DINOv2Backbone', 'LiteFeatures', 'MulConvAdapter',
           'MultiScale', 'TimmFeatureMap']
