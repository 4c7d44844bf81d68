"""Value parsers of the settings tables: one function per kind of value, for a flag (a string) and for
YAML (a string, number, bool or list) alike, so a preset and a flag never disagree on what a value means.

Each parser returns the typed value or raises ``ValueError`` with a short reason; the table adds where
the value came from (the flag, or the key and file of the preset).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

Parser = Callable[[Any], Any]


def choice(options: Sequence[str]) -> Callable[[Any], str]:
    """One of ``options`` (case-insensitive)."""

    def parse(value: Any) -> str:
        if value is False and "off" in options:  # YAML 1.1 reads a bare `off` as false
            return "off"
        text = str(value).lower()
        if isinstance(value, bool) or text not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {value!r}")
        return text

    return parse


def text(value: Any) -> str:
    """A non-empty string (YAML numbers are taken as their text)."""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool) or not str(value).strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return str(value)


def optional(parse: Parser) -> Parser:
    """``parse``, or None for a missing value, '', 'none' or 'auto'."""

    def parse_optional(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "auto")):
            return None
        return parse(value)

    return parse_optional


def integer(low: int, high: int | None = None) -> Callable[[Any], int]:
    """A whole number in ``low..high`` (``high`` None: no upper bound)."""

    def parse(value: Any) -> int:
        try:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected an integer, got {value!r}") from None
        if number < low or (high is not None and number > high):
            bounds = f"{low}-{high}" if high is not None else f"{low} or more"
            raise ValueError(f"expected {bounds}, got {number}")
        return number

    return parse


def _float(value: Any) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None


def number(low: float | None = None, high: float | None = None, *, above: float | None = None,
           below: float | None = None) -> Callable[[Any], float]:
    """A float within inclusive bounds ``low``/``high`` and exclusive bounds ``above``/``below``."""

    def parse(value: Any) -> float:
        result = _float(value)
        if above is not None and not result > above:
            raise ValueError(f"must be above {above:g}, got {value!r}")
        if below is not None and not result < below:
            raise ValueError(f"must be below {below:g}, got {value!r}")
        if (low is not None and result < low) or (high is not None and result > high):
            bounds = f"{low:g}-{high:g}" if low is not None and high is not None else \
                f"{low:g} or more" if low is not None else f"{high:g} or less"
            raise ValueError(f"expected {bounds}, got {value!r}")
        return result

    return parse


def number_pair(low: float) -> Callable[[Any], tuple[float, float]]:
    """Two numbers LOW <= HIGH, both at least ``low``: two flag words, a YAML list, or 'LOW HIGH'."""

    def parse(value: Any) -> tuple[float, float]:
        items = value.replace(",", " ").split() if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or len(items) != 2:
            raise ValueError(f"expected two numbers LOW HIGH, got {value!r}")
        first, second = (_float(v) for v in items)
        if not low <= first <= second:
            raise ValueError(f"expected {low:g} <= LOW <= HIGH, got {first:g} {second:g}")
        return first, second

    return parse


def boolean(value: Any) -> bool:
    """true/false, yes/no, on/off, 1/0."""
    if isinstance(value, bool):
        return value
    word = str(value).lower()
    if word in ("true", "yes", "on", "1"):
        return True
    if word in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _multiple_of_32(side: int) -> int:
    if side <= 0 or side % 32:
        raise ValueError(f"sides must be positive multiples of 32, got {side}")
    return side


def resolution(*words: str) -> Callable[[Any], int | tuple[int, int] | str]:
    """'2048' (square), '2048x1152' (W x H), or one of ``words`` (e.g. 'dynamic': each frame's aspect)."""

    def parse(value: Any) -> int | tuple[int, int] | str:
        spelled = str(value).strip().lower()
        if spelled in words:
            return spelled
        match = re.fullmatch(r"(\d+)(?:x(\d+))?", spelled)
        if isinstance(value, bool) or not match:
            raise ValueError(f"expected N, WxH or {' or '.join(words)}, got {value!r}")
        if match.group(2) is None:
            return _multiple_of_32(int(match.group(1)))
        return _multiple_of_32(int(match.group(1))), _multiple_of_32(int(match.group(2)))

    return parse


def frame_size(value: Any) -> tuple[int, int]:
    """'WxH' of a generated clip: even sides of at least 32."""
    try:
        width, height = (int(v) for v in str(value).lower().split("x"))
    except ValueError:
        raise ValueError(f"expected WxH, got {value!r}") from None
    if width < 32 or height < 32 or width % 2 or height % 2:
        raise ValueError(f"{value}: width and height must be even and at least 32")
    return width, height


def colour(value: Any) -> tuple[int, int, int]:
    """'#rrggbb' (the '#' may be left out) as an RGB triple."""
    match = re.fullmatch(r"#?([0-9a-fA-F]{6})", str(value).strip())
    if match is None or isinstance(value, bool):
        raise ValueError(f"expected #rrggbb, got {value!r}")
    digits = match.group(1)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def device(value: Any) -> str:
    """Where a model runs in this process: auto, cpu, cuda, cuda:N or mps."""
    spelled = str(value).strip().lower()
    if isinstance(value, bool) or not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", spelled):
        raise ValueError(f"expected auto, cpu, cuda, cuda:N or mps, got {value!r}")
    return spelled



def frame_rate(value: Any) -> Fraction:
    """Frames per second above 0: '25', '29.97' or '30000/1001'."""
    try:
        if isinstance(value, bool):
            raise ValueError
        rate = Fraction(str(value).strip()).limit_denominator(1001)
    except (TypeError, ValueError, ZeroDivisionError):
        raise ValueError(f"expected frames per second (25, 29.97 or 30000/1001), got {value!r}") from None
    if rate <= 0:
        raise ValueError(f"must be above 0, got {value!r}")
    return rate
