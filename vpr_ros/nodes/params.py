"""Declare a settings dataclass as ROS parameters and read it back.

A field whose default is itself a dataclass (e.g. the matcher's ``filter``) becomes a group of
parameters ``filter.<field>``, as ROS parameter YAML nests them.
"""
from __future__ import annotations

import dataclasses
from typing import Type, TypeVar

from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from vpr_ros.config import field_defaults

T = TypeVar('T')

_EMPTY_LIST_TYPES = {'List[int]': Parameter.Type.INTEGER_ARRAY,
                     'List[float]': Parameter.Type.DOUBLE_ARRAY,
                     'List[str]': Parameter.Type.STRING_ARRAY}


def declare_params(node: Node, cls: Type[T], prefix: str = '') -> None:
    """Declare every field of ``cls`` (defaults from the dataclass) as a parameter."""
    types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    for name, default in field_defaults(cls).items():
        if dataclasses.is_dataclass(default):
            declare_params(node, type(default), f'{prefix}{name}.')
        elif isinstance(default, list) and not default:
            node.declare_parameter(prefix + name, _EMPTY_LIST_TYPES[types[name]])
        else:
            node.declare_parameter(prefix + name, default)


def read_config(node: Node, cls: Type[T], prefix: str = '') -> T:
    """The current parameter values of ``node`` as a ``cls`` instance."""
    values = {}
    for name, default in field_defaults(cls).items():
        if dataclasses.is_dataclass(default):
            values[name] = read_config(node, type(default), f'{prefix}{name}.')
            continue
        try:
            value = node.get_parameter(prefix + name).value
        except ParameterUninitializedException:  # an empty list declared by type only
            value = None
        if value is None:
            value = default
        values[name] = list(value) if isinstance(default, list) else value
    return cls(**values)


def declare_config(node: Node, cls: Type[T]) -> T:
    """Declare and read in one step (plain nodes)."""
    declare_params(node, cls)
    return read_config(node, cls)
