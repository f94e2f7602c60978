"""`python -m bulkup.emulator`: the emulator on its own (as `bulkup serve`)."""

import argparse

from bulkup.emulator.cli import add_serve_arguments, run_serve

parser = argparse.ArgumentParser(prog="python -m bulkup.emulator")
add_serve_arguments(parser)
raise SystemExit(run_serve(parser.parse_args()))
