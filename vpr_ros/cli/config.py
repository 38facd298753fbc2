"""``vpr-ros config dump [--out FILE]``: the localization parameter YAML, from the dataclasses.

Writes the layout of config/localize.yaml (``/**/<node>: ros__parameters:``) with every field of
vpr_ros.config at its default and the field's trailing source comment; settings whose default is
an empty list are written commented out (an empty list has no type in ROS 2 parameter YAML).
"""
from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from typing import Dict, List

NODES = {  # node name -> settings dataclass name in vpr_ros.config
    'query_encoder': 'QueryEncoderConfig',
    'gallery_server': 'GalleryServerConfig',
    'matcher': 'MatcherConfig',
}
HEADER = """\
# Parameters of the localization graph (launch/localize.launch.py, `vpr-ros run localize`),
# written by `vpr-ros config dump` from the dataclasses in vpr_ros/config.py: every field at its
# default (list settings whose default is empty are commented out: an empty list has no type in
# ROS 2 parameter YAML). Keys are `/**/<node>`: they apply under any namespace.
"""
COMMENT_COLUMN = 35


def _comments(cls) -> Dict[str, str]:
    """{field: its trailing ``# comment`` in the class source} (empty when not available)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    out = {}
    for line in source.splitlines():
        m = re.match(r'\s+(\w+)\s*:[^#]*?#\s*(.*)$', line)
        if m and "'" not in line.split('#')[0].split('=')[0]:
            out[m.group(1)] = m.group(2).strip()
    return out


def _scalar(value) -> str:
    import yaml
    if value == '' and isinstance(value, str):
        return '""'
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text[:-3].strip() if text.endswith('...') else text


def _lines(obj, indent: int) -> List[str]:
    comments = _comments(type(obj))
    out = []
    pad = ' ' * indent
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out.append(f'{pad}{f.name}:')
            out.extend(_lines(value, indent + 2))
            continue
        text = f'{pad}{f.name}: {_scalar(value)}'
        if isinstance(value, (list, tuple)) and not value:
            text = f'{pad}# {f.name}: []'
        note = comments.get(f.name)
        if note:
            text = f'{text:<{COMMENT_COLUMN - 1}} # {note}'
        out.append(text)
    return out


def dump_yaml() -> str:
    """The localization parameter YAML of the node dataclasses' defaults."""
    from vpr_ros import config
    blocks = []
    for node, name in NODES.items():
        cfg = getattr(config, name)()
        blocks.append('\n'.join([f'/**/{node}:', '  ros__parameters:', *_lines(cfg, 4)]))
    return HEADER + '\n\n'.join(blocks) + '\n'


def add_arguments(parser) -> None:
    """``dump [--out FILE]``."""
    sub = parser.add_subparsers(dest='action', required=True)
    dump = sub.add_parser('dump', help='write the localization parameter YAML (defaults)')
    dump.add_argument('--out', default='', help="file to write ('' = standard output)")


def run(args) -> int:
    """Write the YAML to --out or print it."""
    text = dump_yaml()
    if args.out:
        with open(args.out, 'w') as fh:
            fh.write(text)
        print(f'wrote {args.out}', file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
