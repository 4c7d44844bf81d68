"""A command's settings table: its keys, the flags made from them, and values from defaults < preset < flags.

Every key is at once a YAML key and a flag (``temporal_window`` is ``--temporal-window``), parsed by one
function from ``values``. A bad value or an unknown key is a ``ConfigError`` that says where it came
from: the flag, or the key and the preset file.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from birefnet.errors import ConfigError
from pipeline.settings.presets import read_preset
from pipeline.settings.values import Parser

CONFIG_FLAG = "config"


@dataclass(frozen=True)
class Key:
    """One setting: how to parse it and how its flag reads.

    ``kind``: 'value' takes an argument; 'repeat' takes one each time it is given and the parser gets
    the list; 'switch' is a flag that turns it on (``--quiet``); 'toggle' is a ``--x/--no-x`` pair.
    ``aliases``: more option strings for the same flag (``-o``). ``nargs``: words the flag takes when
    more than one."""

    parse: Parser
    help: str
    metavar: str | tuple[str, ...] | None = None
    kind: Literal["value", "repeat", "switch", "toggle"] = "value"
    aliases: tuple[str, ...] = ()
    nargs: int | None = None

    def with_help(self, help: str, metavar: str | tuple[str, ...] | None = None) -> Key:
        """The same setting explained for another command."""
        return Key(self.parse, help, metavar or self.metavar, self.kind, self.aliases, self.nargs)


def flag_name(key: str) -> str:
    return "--" + key.replace("_", "-")


@dataclass(frozen=True)
class SettingsTable:
    """The keys of one command. ``required``: keys that a flag or the preset must give."""

    command: str
    keys: Mapping[str, Key]
    required: tuple[str, ...] = field(default=())

    def add_arguments(self, parser: argparse.ArgumentParser, defaults: Mapping[str, Any] | None = None) -> None:
        """``--config`` and one flag per key. Every flag's default is None, so that only flags actually
        given override the preset; ``defaults`` are only shown in the help."""
        parser.add_argument("--" + CONFIG_FLAG, metavar="NAME|FILE",
                            help=f"YAML preset (a bundled {self.command} preset or a file); flags win")
        for key, spec in self.keys.items():
            names = [*spec.aliases, flag_name(key)]
            text = spec.help.replace("%", "%%")  # argparse expands %(...)s in help
            if spec.kind == "switch":
                parser.add_argument(*names, dest=key, action="store_const", const=True, help=text)
            elif spec.kind == "toggle":
                parser.add_argument(*names, dest=key, action=argparse.BooleanOptionalAction, help=text)
            elif spec.kind == "repeat":
                parser.add_argument(*names, dest=key, action="append", metavar=spec.metavar, help=text)
            else:
                default = (defaults or {}).get(key)
                shown = "" if default is None or "default:" in spec.help else f" (default: {_shown(default)})"
                parser.add_argument(*names, dest=key, metavar=spec.metavar, nargs=spec.nargs,
                                    help=text + shown + (" [required]" if key in self.required else ""))

    def flags_of(self, args: argparse.Namespace) -> dict[str, Any]:
        """The values of this table's flags in parsed command-line arguments (None: not given)."""
        return {key: getattr(args, key, None) for key in self.keys}

    def values(self, flags: Mapping[str, Any], preset: str | None = None) -> dict[str, Any]:
        """Parsed values of the keys the preset or the flags give (flags win; None: not given)."""
        raw: dict[str, tuple[Any, str]] = {}
        if preset:
            path, written = read_preset(preset, self.command)
            for key, (spelled, value) in written.items():
                if key not in self.keys:
                    raise ConfigError(f"config {path}: unknown key {spelled!r}")
                raw[key] = (value, f"config key {spelled!r} in {path}")
        for key, value in flags.items():
            if value is not None:
                if key not in self.keys:
                    raise ConfigError(f"{self.command}: unknown setting {key!r}")
                raw[key] = (value, flag_name(key))
        missing = [flag_name(key) for key in self.required if key not in raw]
        if missing:
            raise ConfigError(f"{self.command}: {', '.join(missing)} required (as a flag or a preset key)")
        settings = {}
        for key, (value, origin) in raw.items():
            try:
                settings[key] = self.keys[key].parse(value)
            except ValueError as exc:
                raise ConfigError(f"{origin}: {exc}") from None
        return settings

    def values_of(self, args: argparse.Namespace) -> dict[str, Any]:
        """``values`` of parsed command-line arguments and the ``--config`` preset they name."""
        return self.values(self.flags_of(args), getattr(args, CONFIG_FLAG, None))


def _shown(default: Any) -> str:
    if isinstance(default, tuple):
        return " ".join(str(v) for v in default)
    return str(default)
