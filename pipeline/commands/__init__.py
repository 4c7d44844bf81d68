"""The subcommands of ``birefnet-video``, one module each, all thin: parse, build, run.

A command module has ``add_parser(subparsers)``, which adds its settings table's flags
(``pipeline.settings.<command>``) and sets ``run``, and ``run(args)``, which builds the settings from
the flags and the ``--config`` preset and hands over to the code that does the work. Heavy modules
(torch, OpenCV, PyAV) are imported inside ``run`` so that ``--help`` stays quick. To add a command:
a settings module with its dataclass and ``SettingsTable``, a module here, its name in
``run_pipeline.COMMAND_MODULES``, and a preset in ``configs/`` with ``command: <name>``.
"""
