"""`python -m bulkup` runs the command line."""

from bulkup.cli.main import run

run()
