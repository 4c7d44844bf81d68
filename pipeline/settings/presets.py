"""YAML presets: bundled ones by name (``--config cpu-test``), or any file by path.

The bundled presets are the top-level ``configs/`` folder of the source tree; a wheel carries the same
files as the package data ``pipeline/presets/`` (see setup.py), so installed and checked-out copies
find them alike. Each bundled preset names its command (``command: process``); a user's file may leave
that out and then serves whichever command reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from birefnet.errors import ConfigError

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
COMMAND_KEY = "command"


def presets_dir() -> Path:
    """The installed package's presets, or ``configs/`` of the source tree this package runs from."""
    installed = _PACKAGE_ROOT / "presets"
    return installed if installed.is_dir() else _PACKAGE_ROOT.parent / "configs"


def bundled_presets(command: str | None = None) -> dict[str, Path]:
    """Name -> file of every bundled preset (of ``command`` only, when given)."""
    found = {}
    for path in sorted(presets_dir().glob("*.yaml")):
        if command is None or _read(path).get(COMMAND_KEY) == command:
            found[path.stem] = path
    return found


def resolve_preset_path(name: str, command: str) -> Path:
    """A path as given, or the bundled preset ``NAME`` (``NAME.yaml`` in the presets folder)."""
    path = Path(name)
    if path.is_file():
        return path
    bundled = presets_dir() / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    if bundled.is_file():
        return bundled
    known = ", ".join(bundled_presets(command)) or "none"
    raise ConfigError(f"config: no such file or preset {name!r} (presets for {command}: {known})")


def _read(path: Path) -> dict[Any, Any]:
    import yaml  # only when a preset is read: keeps `--help` quick

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"config {path}: not valid YAML{where}") from None
    except OSError as exc:
        raise ConfigError(f"config {path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config {path}: not a text file (YAML must be UTF-8 text)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: expected a mapping of keys to values")
    return data


def read_preset(name: str, command: str) -> tuple[Path, dict[str, tuple[str, Any]]]:
    """The file of a preset for ``command`` and its values: key -> (the key as written, raw value);
    '-' and '_' are the same in key names. A preset written for another command is an error naming both."""
    path = resolve_preset_path(name, command)
    data = _read(path)
    meant_for = data.pop(COMMAND_KEY, command)
    if meant_for != command:
        raise ConfigError(f"config {path}: a preset for `{meant_for}`, not for `{command}`")
    return path, {str(key).replace("-", "_"): (str(key), value) for key, value in data.items()}
