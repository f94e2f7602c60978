"""The command line's front door: the parser of every command and the dispatch to the module
that runs it (``cli/upload.py``, ``cli/jobs.py``, ``cli/journals.py``, ``cli/reports.py``,
``cli/plan.py``; ``bulkup serve`` is the emulator's own ``emulator/cli.py``). Exit codes are
defined once in :mod:`bulkup.report`: 0 done, 1 some files failed, 2 usage, config or
surroundings, 3 fatal, 130 interrupted, 141 the output's reader went away.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import NoReturn

from bulkup import __version__
from bulkup.cli.args import say
from bulkup.cli.jobs import add_job_commands, job_command
from bulkup.cli.journals import add_journal_commands
from bulkup.cli.upload import add_upload_arguments, upload_command
from bulkup.report import EXIT_BROKEN_PIPE, EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with its subcommands."""
    parser = argparse.ArgumentParser(
        prog="bulkup",
        description="Bulk uploads to the Scene7 UploadFile servlet, and a local emulator of it.",
    )
    parser.add_argument("--version", action="version", version=f"bulkup {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_upload_arguments(
        commands.add_parser(
            "upload",
            help="upload files and folders as one job",
            description="Upload every file under SRC as one UploadFile job.",
        )
    )
    add_journal_commands(commands)
    add_job_commands(commands)
    from bulkup.cli.plan import add_plan_arguments

    add_plan_arguments(
        commands.add_parser(
            "plan",
            help="how N shards would split the files",
            description="List SRC and print "
            "the files and bytes of each of --shards N shards, by hash and by size.",
        )
    )
    completion = commands.add_parser(
        "completion",
        help="print a shell completion script",
        description="Print a completion script: "
        'eval "$(bulkup completion bash)" in ~/.bashrc, or '
        "bulkup completion zsh > a file named _bulkup on $fpath.",
    )
    completion.add_argument("shell", choices=("bash", "zsh"), help="the shell")
    serve = commands.add_parser("serve", help="run the UploadFile emulator")
    from bulkup.emulator.cli import add_serve_arguments  # the emulator loads only for serve

    add_serve_arguments(serve)
    return parser


def run() -> NoReturn:
    """The console entry point: :func:`main`, then a quick exit.

    Everything the run opened is closed by then (journal, sockets, the read helper, the
    report file), so the interpreter's teardown of every module and object, about 40 ms after
    an upload, is skipped: output is flushed and the process ends with ``os._exit``.
    """
    try:
        code = main()
    except BrokenPipeError:  # e.g. ``bulkup status | head``: the reader has what it wanted
        code = EXIT_BROKEN_PIPE
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe, a closed stream
            stream.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    from bulkup.cli.runtime import import_structlog

    import_structlog()  # before anything imports structlog: without rich
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from bulkup.emulator.cli import run_serve

        return run_serve(args)
    if args.command == "plan":
        from bulkup.cli.plan import run_plan

        return run_plan(args)
    if args.command == "report" and args.report_action == "merge":
        from bulkup.cli.reports import run_report_merge

        return run_report_merge(args)
    if args.command == "report" and not args.failed:
        say("bulkup: report needs --failed, or merge REPORT...", file=sys.stderr)
        return EXIT_USAGE
    if args.command in ("status", "report", "journal"):
        from bulkup.cli.journals import run_journal_command

        return run_journal_command(args)
    if args.command == "job":
        return job_command(args)
    if args.command == "completion":
        import shtab

        say(shtab.complete(build_parser(), shell=args.shell), end="")
        return 0
    return upload_command(args)


if __name__ == "__main__":
    sys.exit(main())
