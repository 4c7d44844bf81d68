"""`birefnet-video models`: the variants, their resolutions and licences, and which are cached locally."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from pipeline.commands import add_command
from pipeline.settings.models import MODELS_SETTINGS

if TYPE_CHECKING:
    from birefnet.registry import Variant


def variant_status(variant: Variant) -> str:
    """'bundled', 'cached' or 'not cached' (never touches the network)."""
    from birefnet.weights import cached_hub_file

    if variant.bundled_path is not None:
        return "bundled" if variant.bundled_path.is_file() else "missing"
    return "cached" if variant.hub_repo and cached_hub_file(variant.hub_repo) else "not cached"


def _resolution(variant: Variant) -> str:
    return "dynamic" if variant.resolution is None else "{}x{}".format(*variant.resolution)


def run(args: argparse.Namespace) -> int:
    from birefnet.registry import VARIANTS

    as_json = MODELS_SETTINGS.values_of(args).get("json", False)
    rows = [
        {
            "name": v.name,
            "backbone": v.backbone,
            "resolution": _resolution(v),
            "weights": variant_status(v),
            "hub_repo": v.hub_repo or "(bundled)",
            "licence": v.licence,
            "description": v.description,
        }
        for v in VARIANTS.values()
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    columns = ["name", "backbone", "resolution", "weights", "hub_repo", "licence"]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns[:-1]}
    print("  ".join(c.upper().ljust(widths.get(c, 0)) for c in columns).rstrip())
    for row in rows:
        print("  ".join(row[c].ljust(widths.get(c, 0)) for c in columns).rstrip())
    print("\nThe pipeline default is hr-matting. Weights download once from the Hugging Face hub and are "
          "cached; set HF_HUB_OFFLINE=1 to use the cache only.")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "models", help="list model variants and which are cached locally", run=run)
    MODELS_SETTINGS.add_arguments(parser)
