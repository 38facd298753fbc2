"""One command-line flag per dataclass field, for subcommands whose settings are a dataclass."""
from __future__ import annotations

import argparse
import dataclasses
import typing


def _flag_type(tp):
    if tp is bool:
        return lambda s: s.lower() in ('1', 'true', 'yes', 'on')
    return tp


def add_dataclass_arguments(parser, cls, skip=()) -> None:
    """One --flag per dataclass field (default SUPPRESS: only given flags reach the args)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp = hints[f.name]
        kw = dict(default=argparse.SUPPRESS, dest=f.name, help=f'(default: {f.default!r})')
        if typing.get_origin(tp) in (tuple, typing.Tuple):
            kw.update(type=int, nargs='+')
        else:
            kw['type'] = _flag_type(tp)
        parser.add_argument('--' + f.name.replace('_', '-'), **kw)
