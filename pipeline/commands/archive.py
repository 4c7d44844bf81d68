"""`birefnet-video archive`: matte an archive of videos on a Ray cluster, resumably. Parse, build, run;
``--status OUT_DIR`` summarises a job instead."""

from __future__ import annotations

import argparse

from birefnet.errors import ConfigError
from pipeline.commands import add_command
from pipeline.settings.archive import ARCHIVE_SETTINGS, build_config, default_values

EXAMPLES = """examples:
  birefnet-video archive footage/ -o mattes/ --report report.json
  birefnet-video archive list.txt -o /shared/out --ray-address auto --segment-seconds 60
  ray job submit --working-dir . -- birefnet-video archive /shared/in -o /shared/out
  birefnet-video archive --status /shared/out
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "archive", help="matte an archive of videos on a Ray cluster, resumably",
        description="Cut videos into units that decode, matte and encode on the node where they run; "
                    "record each unit in OUT_DIR so a rerun resumes; join the parts into the outputs "
                    "`process` writes. Inputs and OUT_DIR must be on a filesystem every node shares.",
        examples=EXAMPLES, run=run)
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="video file, folder (searched recursively) "
                                                                   "or text file listing one path a line")
    parser.add_argument("-o", dest="output_path", metavar="OUT_DIR", help="output and job directory")
    parser.add_argument("--status", metavar="OUT_DIR", help="summarise the job in OUT_DIR and exit")
    ARCHIVE_SETTINGS.add_arguments(parser, default_values())


def run(args: argparse.Namespace) -> int:
    if args.status:
        from pipeline.archive.status import job_status

        print(job_status(args.status).format())
        return 0
    if not args.inputs or not args.output_path:
        raise ConfigError("archive: give INPUTS and -o OUT_DIR (or --status OUT_DIR)")
    from pipeline.archive.job import run_archive
    from pipeline.progress import notes_silenced

    config = build_config(ARCHIVE_SETTINGS.flags_of(args), preset=args.config)
    with notes_silenced(config.process.quiet):
        run_archive(args.inputs, args.output_path, config)
    return 0
