"""`python -m bulkup` runs the command line."""

from bulkup.cli import run

run()
