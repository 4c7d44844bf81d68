"""birefnet-video command line: parse, build, run.

Every subcommand is a module of ``pipeline.commands`` exposing ``add_parser(subparsers)``, which
registers its settings table's flags (``pipeline.settings``) and sets ``run`` as the handler; this file
only wires them together and turns user errors into one line and an exit code. Building the parser
imports no torch: the commands import their heavy modules inside ``run``.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import os
import signal
import sys
import threading

from birefnet.errors import UserError
from pipeline import termination
from pipeline.termination import Terminated

# module path of every subcommand, in the order `--help` lists them
COMMAND_MODULES = (
    "pipeline.commands.process",
    "pipeline.commands.webcam",
    "pipeline.commands.demo",
    "pipeline.commands.models",
    "pipeline.commands.export",
    "pipeline.commands.train",
    "pipeline.commands.archive",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="birefnet-video",
        description="Video background removal with BiRefNet.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def _dump_stacks_on_crash() -> None:
    """A crash in native code (PyAV, Ray's core, torch) then names where every thread was, not only
    "Segmentation fault". Written to a copy of descriptor 2 taken now: while Ray runs, the archive points
    descriptor 2 itself at Ray's log. Left as it is where a caller (pytest) turned it on already."""
    if faulthandler.is_enabled():
        return
    try:
        terminal = os.fdopen(os.dup(2), "w")
    except OSError:  # no descriptor 2 (a detached service)
        return
    faulthandler.enable(terminal, all_threads=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _dump_stacks_on_crash()
    in_main_thread = threading.current_thread() is threading.main_thread()  # signals are only set there
    previous_sigterm = termination.install() if in_main_thread else None
    try:
        return int(args.run(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # Terminated is one
        if isinstance(exc, Terminated):
            print("terminated", file=sys.stderr)
            return 128 + signal.SIGTERM
        print("interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_sigterm)


if __name__ == "__main__":
    sys.exit(main())
