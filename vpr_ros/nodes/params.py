"""Declare a settings dataclass as ROS parameters and read it back."""
from __future__ import annotations

import dataclasses
from typing import Type, TypeVar

from rclpy.node import Node
from rclpy.parameter import Parameter

from vpr_ros.config import field_defaults

T = TypeVar('T')

_EMPTY_LIST_TYPES = {'List[int]': Parameter.Type.INTEGER_ARRAY,
                     'List[float]': Parameter.Type.DOUBLE_ARRAY,
                     'List[str]': Parameter.Type.STRING_ARRAY}


def declare_config(node: Node, cls: Type[T]) -> T:
    """Declare every field of ``cls`` as a parameter of ``node`` and return the loaded values."""
    defaults = field_defaults(cls)
    types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    values = {}
    for name, default in defaults.items():
        if isinstance(default, list) and not default:
            node.declare_parameter(name, _EMPTY_LIST_TYPES[types[name]])
        else:
            node.declare_parameter(name, default)
        value = node.get_parameter(name).value
        values[name] = list(value) if isinstance(default, list) else value
        if values[name] is None:
            values[name] = default
    return cls(**values)
