"""The subcommands of ``birefnet-video``, one module each, all thin: parse, build, run.

A command module has ``add_parser(subparsers)``, which adds its settings table's flags
(``pipeline.settings.<command>``) and sets ``run``, and ``run(args)``, which builds the settings from
the flags and the ``--config`` preset and hands over to the code that does the work. Heavy modules
(torch, OpenCV, PyAV) are imported inside ``run`` so that ``--help`` stays quick. To add a command:
a settings module with its dataclass and ``SettingsTable``, a module here, its name in
``run_pipeline.COMMAND_MODULES``, and a preset in ``configs/`` with ``command: <name>``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def add_command(subparsers: argparse._SubParsersAction, name: str, *, help: str, run: Callable[..., int],
                description: str | None = None, examples: str | None = None) -> argparse.ArgumentParser:
    """The parser of subcommand ``name`` with ``run`` as its handler; ``examples`` are shown as written
    after the flags."""
    formatter = argparse.RawDescriptionHelpFormatter if examples else argparse.HelpFormatter
    parser = subparsers.add_parser(name, help=help, description=description, epilog=examples,
                                   formatter_class=formatter)
    parser.set_defaults(run=run)
    return parser
