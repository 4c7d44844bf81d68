"""`birefnet-video process`: matte one or many videos. Parse, build the settings, hand over to the jobs."""

from __future__ import annotations

import argparse

from pipeline.commands import add_command
from pipeline.settings.process import PROCESS_SETTINGS, build_config, default_values

EXAMPLES = """examples:
  birefnet-video process clip.mp4 -o clip_rgba.mov
  birefnet-video process clip.mp4 -o green.mp4 --output composite --background '#00b140'
  birefnet-video process shots/*.mov -o out/ --config prores-hr-matting --report report.json
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "process", help="matte videos: alpha channel, matte, foreground or composite",
        description="Remove the background of videos with BiRefNet. Several inputs go to one output "
                    "directory; inputs whose output exists are skipped unless --overwrite.",
        examples=EXAMPLES, run=run)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="video file, image sequence or stream URL")
    parser.add_argument("-o", dest="output_path", required=True, metavar="OUTPUT",
                        help="output file, or a directory for several inputs")
    PROCESS_SETTINGS.add_arguments(parser, default_values())


def run(args: argparse.Namespace) -> int:
    from pipeline.progress import notes_silenced, report_if_stopped

    config = build_config(PROCESS_SETTINGS.flags_of(args), preset=args.config)
    with notes_silenced(config.quiet):
        with report_if_stopped(config.report, args.inputs):  # torch's import takes seconds: Ctrl-C lands there
            from pipeline.jobs import plan_jobs, run_jobs

            jobs = plan_jobs(args.inputs, args.output_path, config)
        run_jobs(jobs, config)
    return 0
