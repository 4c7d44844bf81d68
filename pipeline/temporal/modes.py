"""The temporal smoothing modes, importable without torch (the command line reads them for --help)."""

from __future__ import annotations

TEMPORAL_MODES = ("off", "ema", "flow")
