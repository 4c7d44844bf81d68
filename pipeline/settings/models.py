"""Settings of `models`: how the list of variants is printed."""

from __future__ import annotations

from pipeline.settings import values
from pipeline.settings.table import Key, SettingsTable

MODELS_SETTINGS = SettingsTable("models", {
    "json": Key(values.boolean, "print the list as JSON", kind="switch"),
})
