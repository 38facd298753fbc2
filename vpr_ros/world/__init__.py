"""Synthetic geo-tagged street-level imagery: procedural towns rendered headless with OpenGL.

High level: ``generate_world(WorldConfig(seed=..., out=...)) -> WorldSummary`` writes VG folders,
GSV-Cities folders and rosbag2 files; ``sample_world(out_dir)`` is the README demo preset.
Low level: ``Town.from_seed(seed)``, ``plan_route(town, places)``, ``Renderer(town, size)`` and
``Renderer.render(pose, condition) -> (H, W, 3) uint8 RGB``.
"""
from vpr_ros.world.camera import CameraPose
from vpr_ros.world.conditions import CONDITIONS, Condition, Viewpoint, get_condition
from vpr_ros.world.generate import WorldConfig, WorldSummary, generate_world, sample_world
from vpr_ros.world.render import Renderer, RenderError
from vpr_ros.world.routes import Route, drive, plan_route
from vpr_ros.world.town import Town, TownSettings

__all__ = ['CONDITIONS', 'CameraPose', 'Condition', 'RenderError', 'Renderer', 'Route', 'Town',
           'TownSettings', 'Viewpoint', 'WorldConfig', 'WorldSummary', 'drive', 'generate_world',
           'get_condition', 'plan_route', 'sample_world']
