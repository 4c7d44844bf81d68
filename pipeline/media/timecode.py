"""SMPTE timecode arithmetic: a partial run's output starts at the timecode of its first frame."""

from __future__ import annotations

import logging
import re
from fractions import Fraction

log = logging.getLogger("birefnet_video")


def _timecode_rate(fps: Fraction) -> tuple[int, bool]:
    """Nominal integer rate and whether SMPTE drop-frame counting applies (29.97, 59.94)."""
    nominal = round(float(fps))
    drop = nominal in (30, 60) and fps.denominator == 1001
    return nominal, drop


def timecode_to_frames(tc: str, fps: Fraction) -> int:
    """SMPTE timecode 'HH:MM:SS:FF' (';' before FF for drop-frame) -> frame number."""
    match = re.fullmatch(r"(\d+):(\d\d):(\d\d)[:;.,](\d\d)", tc.strip())
    if not match:
        raise ValueError(f"not a timecode: {tc!r}")
    hh, mm, ss, ff = (int(g) for g in match.groups())
    nominal, drop = _timecode_rate(fps)
    frames = ((hh * 60 + mm) * 60 + ss) * nominal + ff
    if drop:
        dropped_per_minute = nominal // 15  # 2 at 29.97, 4 at 59.94
        minutes = hh * 60 + mm
        frames -= dropped_per_minute * (minutes - minutes // 10)
    return frames


def frames_to_timecode(frames: int, fps: Fraction) -> str:
    nominal, drop = _timecode_rate(fps)
    if drop:
        dropped = nominal // 15
        per_10min = nominal * 600 - dropped * 9
        per_min = nominal * 60 - dropped
        tens, rest = divmod(frames, per_10min)
        extra = 0 if rest < dropped else dropped * ((rest - dropped) // per_min)
        frames = frames + dropped * 9 * tens + extra
    ff = frames % nominal
    ss = frames // nominal % 60
    mm = frames // (nominal * 60) % 60
    hh = frames // (nominal * 3600) % 24
    return f"{hh:02d}:{mm:02d}:{ss:02d}{';' if drop else ':'}{ff:02d}"


def shift_timecode(tc: str | None, frames: int, fps: Fraction | None) -> str | None:
    """Timecode ``frames`` later than ``tc`` (the start timecode of a partial run)."""
    if tc is None or frames == 0:
        return tc
    if fps is None:
        log.warning("timecode %s not shifted for the partial range: frame rate unknown", tc)
        return tc
    try:
        return frames_to_timecode(timecode_to_frames(tc, fps) + frames, fps)
    except ValueError:
        log.warning("timecode %r not understood; not carried", tc)
        return None
