"""ROS 2 parameter YAML files without rclpy: find and change one node's ``ros__parameters``.

config/localize.yaml keys each node with a wildcard namespace (``/**/matcher``), so the same
file configures the nodes under any namespace (``ros2 launch ... namespace:=robot1``). Files
keyed by a bare node name (``matcher``), an absolute name (``/robot1/matcher``) or the global
wildcard (``/**``) are read too, the way rcl merges them: later, more specific keys win.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

WILDCARD = '/**/{}'


def _matches(key: str, node: str, namespace: str) -> bool:
    key = key.strip()
    ns = '/' + namespace.strip('/') if namespace.strip('/') else ''
    if key in ('/**', '**'):
        return True
    if key in (node, f'/{node}') and not ns:
        return True
    if key.lstrip('/') in (f'**/{node}', f'*/{node}'):
        return True
    return bool(ns) and key in (f'{ns}/{node}', f'{ns.lstrip("/")}/{node}')


def node_params(doc: Dict[str, Any], node: str, namespace: str = '') -> Dict[str, Any]:
    """The merged ``ros__parameters`` that ``node`` (in ``namespace``) receives from ``doc``."""
    out: Dict[str, Any] = {}
    for key, body in (doc or {}).items():
        if isinstance(body, dict) and _matches(str(key), node, namespace):
            out.update(body.get('ros__parameters') or {})
    return out


def set_node_params(doc: Dict[str, Any], node: str, values: Dict[str, Any]) -> Dict[str, Any]:
    """Update ``node``'s section of ``doc`` in place (the wildcard key unless another key names
    the node already) and return ``doc``."""
    key = next((k for k, b in doc.items() if isinstance(b, dict)
                and str(k).lstrip('/') in (node, f'**/{node}')), WILDCARD.format(node))
    doc.setdefault(key, {}).setdefault('ros__parameters', {}).update(values)
    return doc


def load(path) -> Dict[str, Any]:
    """A parameter YAML file as a dict (FileNotFoundError naming it when absent)."""
    import yaml
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'parameter file {path} not found')
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict):
        raise ValueError(f'{path}: a ROS parameter file maps node names to ros__parameters')
    return doc


def dump(doc: Dict[str, Any], path) -> str:
    """Write ``doc`` as YAML to ``path``; returns the path as a string."""
    import yaml
    Path(path).write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)
