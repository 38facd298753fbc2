"""Settings dataclass <-> command-line flags: the one place every ``vpr-ros`` CLI gets them from.

``add_dataclass_arguments(parser, Config)`` adds one ``--field-name`` per field and
``dataclass_from_args(Config, args)`` builds the dataclass back. The rules, the same for every
subcommand:

* every field is a flag named after it (underscores become dashes), its default shown in --help
  (``ArgumentParser`` / ``DefaultsHelpFormatter`` show the defaults of the other flags too);
  ``args`` always holds every field (its default when the flag is not given);
* bool: ``--flag`` / ``--no-flag``; ``--flag true|false`` (also yes/no, on/off, 1/0) works too;
* tuple/list: several values, each of which may be a comma list (``--sizes 1 2``,
  ``--sizes 1,2``; int values also split on ``x``: ``--size 320x240``); ``--flag ''`` or a bare
  ``--flag`` for a list field gives the empty value; a fixed-length tuple (``Tuple[int, int]``)
  takes exactly that many, a one-value ``Tuple[int, ...]`` stays one value;
* dict: JSON (``--kwargs '{"depth": 4}'``); ``Optional[float]``: ``none``/``off`` is None;
* presets (``presets={'quick': {...}}``) add ``--preset NAME``: dataclass defaults <- preset <-
  the flags actually given, whatever their order.

Per-field help, choices, ``required``, a mutually exclusive ``group`` or an element ``type`` go
in ``help=`` / ``overrides=``.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import re
import typing
from typing import Any, Dict, Mapping, Optional

_TRUE = ('1', 'true', 'yes', 'on')
_FALSE = ('0', 'false', 'no', 'off')
GIVEN = '_flags_given'  # the namespace attribute naming the fields set on the command line


def parse_bool(text: str) -> bool:
    """true/false, yes/no, on/off, 1/0 (any case)."""
    low = str(text).strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f'expected true or false, got {text!r}')


def parse_optional_float(text: str) -> Optional[float]:
    """A float, or None for none/off/''."""
    return None if text.strip().lower() in ('none', 'off', '') else float(text)


def field_default(f: dataclasses.Field) -> Any:
    """A field's default value (its default_factory called)."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def format_default(value: Any) -> str:
    """How --help shows a default: true/false, comma lists, '' for the empty string."""
    if value is None:
        return 'none'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return ','.join(map(str, value)) if value else "''"
    if isinstance(value, dict):
        return json.dumps(value)
    if value == '':
        return "''"
    return str(value)


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """--help of every subcommand: each optional flag with a default shows it, as the dataclass
    flags do (``(default: X)``, formatted by ``format_default``); flags whose help already
    says its default, required ones, switches (store_true) and ``none`` defaults are left."""

    def _format_action(self, action):
        text = action.help
        if (action.option_strings and action.nargs != 0 and not action.required
                and action.default not in (None, argparse.SUPPRESS)
                and text != argparse.SUPPRESS and 'default' not in (text or '')):
            action = copy.copy(action)
            shown = format_default(action.default).replace('%', '%%')  # help is %-formatted
            action.help = f'{text or ""} (default: {shown})'.strip()
        return super()._format_action(action)


class ArgumentParser(argparse.ArgumentParser):
    """The parser of every ``vpr-ros`` subcommand: ``DefaultsHelpFormatter`` unless told
    otherwise; its sub-parsers (``add_subparsers``) are of this class, so they inherit it."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault('formatter_class', DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)


def _mark(namespace, dest: str) -> None:
    given = getattr(namespace, GIVEN, None)
    if given is None:
        given = set()
        setattr(namespace, GIVEN, given)
    given.add(dest)


class _Store(argparse.Action):
    """A plain value; remembers that the flag was given (for presets)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        _mark(namespace, self.dest)


class _Bool(argparse.Action):
    """``--flag`` [true|false] and ``--no-flag``."""

    def __init__(self, option_strings, dest, default=None, help=None, **_):
        flags = []
        for opt in option_strings:
            flags.append(opt)
            if opt.startswith('--'):
                flags.append('--no-' + opt[2:])
        super().__init__(flags, dest, nargs='?', default=default, help=help,
                         metavar='true|false')

    def __call__(self, parser, namespace, values, option_string=None):
        value = True if values is None else parse_bool(values)
        if option_string and option_string.startswith('--no-'):
            value = not value
        setattr(namespace, self.dest, value)
        _mark(namespace, self.dest)


class _Seq(argparse.Action):
    """Several values, each possibly a comma list; a tuple (or list) of the element type."""

    def __init__(self, option_strings, dest, element=str, container=tuple, length=None,
                 **kwargs):
        self.element, self.seq_type, self.length = element, container, length
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        sep = ',' if self.element is str else '[,x]'
        items = []
        for text in values:
            for part in re.split(sep, str(text).strip()):
                if part:
                    try:
                        items.append(self.element(part))
                    except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
                        raise argparse.ArgumentError(self, f'invalid value {part!r}: {exc}')
        if self.length is not None and len(items) != self.length:
            raise argparse.ArgumentError(
                self, f'expected {self.length} values, got {len(items)} ({values})')
        setattr(namespace, self.dest, self.seq_type(items))
        _mark(namespace, self.dest)


def _sequence(tp):
    """(container, element type, fixed length or None) of a tuple/list annotation, else None."""
    origin = typing.get_origin(tp)
    if origin not in (tuple, list):
        return None
    args = typing.get_args(tp)
    if origin is list:
        return list, (args[0] if args else str), None
    if not args or (len(args) == 2 and args[1] is Ellipsis):
        return tuple, (args[0] if args else str), None
    return tuple, args[0], len(args)


def _optional_of(tp):
    if typing.get_origin(tp) is typing.Union:
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return None


def _plain_type(tp):
    if tp in (int, float, str):
        return tp
    if tp is dict or typing.get_origin(tp) is dict or tp is typing.Dict:
        return json.loads
    inner = _optional_of(tp)
    if inner is float:
        return parse_optional_float
    if inner is int:
        return lambda s: None if s.strip().lower() in ('none', 'off', '') else int(s)
    if inner is not None:
        return _plain_type(inner)
    return str


def add_dataclass_arguments(parser, cls, skip=(), help: Optional[Mapping[str, str]] = None,
                            overrides: Optional[Mapping[str, dict]] = None,
                            presets: Optional[Mapping[str, dict]] = None) -> None:
    """One ``--flag`` per field of ``cls`` (see the module docstring for the rules).

    help: {field: text} (the default is appended); overrides: {field: extra add_argument
    keywords}, e.g. choices, required, metavar, ``type`` (the element type of a sequence) or
    ``group`` (add the flag to that argument group); presets: adds ``--preset``.
    """
    hints = typing.get_type_hints(cls)
    help, overrides = dict(help or {}), dict(overrides or {})
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp, default = hints[f.name], field_default(f)
        kw: Dict[str, Any] = dict(dest=f.name, default=default)
        extra = dict(overrides.get(f.name, {}))
        target = extra.pop('group', parser)
        text = help.get(f.name, '')
        if not extra.get('required'):
            text = f'{text} (default: {format_default(default)})'.strip()
        kw['help'] = text.replace('%', '%%')
        seq = _sequence(tp)
        if tp is bool:
            kw['action'] = _Bool
        elif seq is not None:
            container, element, length = seq
            kw.update(action=_Seq, container=container, element=extra.pop('type', element),
                      length=length, nargs='*' if container is list else '+')
            if 'metavar' not in extra:
                kw['metavar'] = element.__name__.upper() if isinstance(element, type) else 'V'
        else:
            kw.update(action=_Store, type=extra.pop('type', _plain_type(tp)))
        kw.update(extra)
        if kw.get('required'):
            kw['default'] = None
        target.add_argument('--' + f.name.replace('_', '-'), **kw)
    if presets:
        parser.add_argument('--preset', choices=sorted(presets), default='',
                            help='a named set of settings; flags given explicitly win')


def flags_given(args) -> set:
    """Names of the fields whose flags were on the command line."""
    return set(getattr(args, GIVEN, None) or ())


def dataclass_from_args(cls, args, presets: Optional[Mapping[str, dict]] = None, **fixed):
    """``cls`` from parsed ``args``: dataclass defaults <- ``--preset`` values <- the flags
    given <- ``fixed``. Fields without a flag keep their defaults."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in vars(args).items() if k in names}
    preset = dict((presets or {}).get(getattr(args, 'preset', '') or '', {}))
    given = flags_given(args)
    values.update({k: v for k, v in preset.items() if k in names and k not in given})
    values.update(fixed)
    return cls(**values)
