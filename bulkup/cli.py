"""The command line: ``bulkup serve`` (the emulator) and ``bulkup upload`` (the uploader).

The only module that parses arguments, prints, and maps outcomes to exit codes.
"""

from __future__ import annotations

import argparse
import sys

from bulkup import __version__

EXIT_OK, EXIT_FILES_FAILED, EXIT_USAGE, EXIT_FATAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with its subcommands."""
    parser = argparse.ArgumentParser(prog="bulkup", description=__doc__)
    parser.add_argument("--version", action="version", version=f"bulkup {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the UploadFile emulator")
    from bulkup.emulator.cli import add_serve_arguments  # the emulator loads only for serve

    add_serve_arguments(serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            from bulkup.emulator.cli import run_serve

            return run_serve(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
