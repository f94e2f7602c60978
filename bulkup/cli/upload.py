"""``bulkup upload``: its flags, the config they make, the run on its event loop (signals,
progress, the embedded emulator) and the summary and exit code at the end."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from bulkup.cli.args import add_log_level_arguments, add_server_arguments, say
from bulkup.cli.runtime import GIL_SWITCH_S, run_loop
from bulkup.errors import ConfigError, JournalError, ReportError
from bulkup.report import EXIT_USAGE, UploadReport

REPORT_TO_STDOUT = "-"
"""128 + SIGPIPE: what a shell reports for a program whose reader went away."""


UPLOAD_PARAM_FLAGS = {
    "overwrite": "replace an asset of the same name (default on)",
    "ready_for_publish": "mark the uploaded assets ready for publishing (default off)",
    "create_mask": "generate a mask for each image (default off)",
    "preserve_publish_state": "keep an overwritten asset's publish state (default on)",
}


def add_upload_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sources", nargs="*", metavar="SRC", help="folders or files to upload")
    where = p.add_argument_group("where to")
    add_server_arguments(where)
    where.add_argument(
        "--emulator",
        action="store_true",
        help="start the embedded emulator on a free loopback port and upload "
        "to it (a sample tree when no SRC is given)",
    )
    where.add_argument(
        "--emulator-root",
        type=Path,
        metavar="DIR",
        help="with --emulator: keep the emulator's files (and the run's "
        "journal) in DIR instead of a folder removed at exit",
    )
    where.add_argument(
        "--user", help="IPS user e-mail (password: BULKUP_PASSWORD or password_file in the config)"
    )
    where.add_argument("--company-handle", help="company handle, e.g. 'c|42'")
    where.add_argument("--company-root", help="company root folder, e.g. 'Acme/'")
    where.add_argument("--dest-folder", help="folder under the company root")
    where.add_argument("--job-name", help="job name (default bulkup-<UTC time>-<random>)")
    what = p.add_argument_group("what")
    what.add_argument(
        "--include",
        action="append",
        metavar="GLOB",
        help="only files matching GLOB (rclone rules: * stays within a folder, "
        "** crosses folders, /GLOB anchors to SRC, {a,b}); repeatable",
    )
    what.add_argument(
        "--exclude",
        action="append",
        metavar="GLOB",
        help="leave matching files out (wins over --include); DIR/ leaves out "
        "a folder and everything below; repeatable",
    )
    what.add_argument(
        "--include-from",
        type=Path,
        metavar="FILE",
        help="include patterns from FILE, one a line (# comments)",
    )
    what.add_argument(
        "--exclude-from",
        type=Path,
        metavar="FILE",
        help="exclude patterns from FILE, one a line (# comments)",
    )
    what.add_argument(
        "--ignore-case",
        action="store_true",
        default=None,
        help="match every include/exclude pattern case-insensitively",
    )
    what.add_argument("--min-size", metavar="SIZE", help="leave out files smaller than SIZE")
    what.add_argument("--max-size", metavar="SIZE", help="leave out files larger than SIZE")
    what.add_argument(
        "--min-age",
        metavar="AGE",
        help="leave out files modified less than AGE ago (30s, 10m, 2h, 7d, 1w or an ISO date)",
    )
    what.add_argument(
        "--max-age",
        metavar="AGE",
        help="leave out files modified more than AGE ago (or before an ISO date)",
    )
    what.add_argument(
        "--follow-symlinks",
        action="store_true",
        default=None,
        help="follow links that resolve inside a source root",
    )
    what.add_argument(
        "--follow-external-symlinks",
        action="store_true",
        default=None,
        help="with --follow-symlinks, follow links out of the roots too",
    )
    what.add_argument("--max-file-size", metavar="SIZE", help="per-file limit (default 2GiB)")
    what.add_argument(
        "--shard",
        metavar="K/N",
        help="send only shard K of N of the files, as its own job (auto/N: K "
        "from JOB_COMPLETION_INDEX, as in a Kubernetes Indexed Job)",
    )
    what.add_argument(
        "--shard-by",
        choices=("hash", "size"),
        help="with --shard: a hash of the target (default), or large files "
        "placed by size from a listing every shard makes alike",
    )
    how = p.add_argument_group("how")
    how.add_argument(
        "--concurrency",
        type=_concurrency,
        metavar="N|auto",
        help="POSTs in flight: a number fixes it (default 8); auto finds the level "
        "as the run goes, from 8, growing while throughput grows and "
        "backing off on 503/429, timeouts and rising latency",
    )
    how.add_argument(
        "--max-concurrency",
        type=int,
        metavar="N",
        help="the most POSTs in flight under --concurrency auto (default 64)",
    )
    how.add_argument(
        "--max-post-bytes", metavar="SIZE", help="cap on file bytes per POST, e.g. 16MiB"
    )
    how.add_argument("--max-files-per-post", type=int, help="cap on files per POST")
    how.add_argument("--source-ip", metavar="ADDR", help="bind every connection to ADDR")
    how.add_argument(
        "--post-timeout",
        dest="post_timeout_s",
        type=float,
        metavar="SECONDS",
        help="deadline of one whole POST (default: read_timeout_s plus the body at 32 KiB/s)",
    )
    how.add_argument(
        "--stop-grace",
        dest="stop_grace_s",
        type=float,
        metavar="SECONDS",
        help="after SIGINT/SIGTERM, time the POSTs in flight get (default 30)",
    )
    how.add_argument(
        "--bwlimit",
        metavar="RATE",
        help="cap on body bytes a second for the whole run: 10M, 512k, off, or a "
        "timetable '08:00,512k 19:00,off' (local time; Mon-08:00,...); "
        "SIGUSR2 toggles it",
    )
    how.add_argument(
        "--tpslimit",
        type=float,
        metavar="N",
        help="cap on POSTs started a second for the whole run (0: none)",
    )
    how.add_argument(
        "--tpslimit-burst",
        type=int,
        metavar="N",
        help="POSTs that may start at once under --tpslimit (default 1)",
    )
    how.add_argument(
        "--proxy",
        metavar="URL",
        help="HTTP proxy for every request, http://[user:pass@]host:port "
        "(default: https_proxy / all_proxy / no_proxy, as curl)",
    )
    how.add_argument(
        "--no-proxy",
        dest="proxy",
        action="store_const",
        const="direct",
        help="connect directly, whatever the proxy variables say",
    )
    how.add_argument(
        "--ipv6",
        dest="address_family",
        action="store_const",
        const="ipv6",
        help="connect over IPv6 (default IPv4)",
    )
    how.add_argument("--ca-bundle", type=Path, help="trust this CA bundle for TLS")
    how.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="do not verify TLS certificates (warns)",
    )
    params = p.add_argument_group("job options (uploadParams; more in the config file)")
    for name, text in UPLOAD_PARAM_FLAGS.items():
        flag = name.replace("_", "-")
        params.add_argument(
            f"--{flag}", dest=name, action=argparse.BooleanOptionalAction, default=None, help=text
        )
    params.add_argument(
        "--email-setting",
        choices=("All", "Error", "ErrorAndWarning", "JobCompletion", "None"),
        help="which job e-mails the server sends to the user",
    )
    sync = p.add_argument_group("journal (resume after a crash; skip unchanged files)")
    sync.add_argument(
        "--journal",
        type=Path,
        metavar="PATH",
        help="journal file (default: one per upload target in the state dir)",
    )
    sync.add_argument(
        "--no-journal",
        action="store_true",
        default=None,
        help="keep no journal: send everything, no resume",
    )
    sync.add_argument(
        "--checksum",
        action="store_true",
        default=None,
        help="unchanged means the same sha256 (cached), not size and mtime",
    )
    sync.add_argument(
        "--force", action="store_true", default=None, help="send every file, changed or not"
    )
    sync.add_argument(
        "--retry-failed",
        action="store_true",
        default=None,
        help="send only the files that failed last time",
    )
    verdict = p.add_argument_group("the server's verdict (job log over the SOAP API)")
    verdict.add_argument(
        "--api-url",
        metavar="URL",
        help="SOAP IpsApiService URL (default: the region's, or the "
        "server's origin + /scene7/services/IpsApiService)",
    )
    verdict.add_argument(
        "--no-wait",
        action="store_true",
        default=None,
        help="do not wait for the job or read its log after endJob",
    )
    verdict.add_argument(
        "--require-confirmation",
        action="store_true",
        default=None,
        help="files the job log cannot confirm count as failed",
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--dry-run",
        action="store_true",
        default=None,
        help="print the plan (files, bytes, POSTs); send nothing",
    )
    out.add_argument(
        "--list",
        dest="list_files",
        action="store_true",
        default=None,
        help="with --dry-run: one line per file: POST number, target, size",
    )
    out.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="write a JSON report to FILE (- for stdout; the summary then goes to stderr)",
    )
    out.add_argument(
        "--log-format",
        choices=("auto", "console", "json"),
        help="log lines as console text or JSON (auto: console on a terminal)",
    )
    add_log_level_arguments(out)
    out.add_argument(
        "--stats",
        metavar="DURATION",
        help="log a 'stats' event every DURATION (30s, 1m; 0: never); default 1m "
        "when stderr is not a terminal, else none (the display shows them)",
    )
    out.add_argument("--config", type=Path, metavar="FILE", help="TOML config file")


def _concurrency(text: str) -> int | str:
    """``--concurrency``: a number, or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or auto, got {text!r}") from None


def upload_command(args: argparse.Namespace) -> int:
    from bulkup.cli.log import configure_logging

    if args.emulator_root is not None and not args.emulator:
        say("bulkup: --emulator-root goes with --emulator", file=sys.stderr)
        return EXIT_USAGE
    if not args.sources and not args.emulator:
        say("bulkup: give at least one SRC (or --emulator for a sample run)", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = _config_from(args)
        configure_logging(config.log_format, level=config.log_level, log_file=config.log_file)
    except ConfigError as exc:
        say(f"bulkup: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if config.insecure:
        say("bulkup: WARNING: TLS certificates are not verified (--insecure)", file=sys.stderr)
    from bulkup.cli.malloc_tuning import tune_malloc
    from bulkup.cli.runtime import import_aiohttp

    import_aiohttp()  # before anything else imports it
    sys.setswitchinterval(GIL_SWITCH_S)
    tune_malloc()  # before the upload's threads start
    return run_loop(_upload_main(config, args), use_uvloop=config.use_uvloop)


def _config_from(args: argparse.Namespace) -> Any:
    from bulkup.config.load import load_config
    from bulkup.config.model import parse_duration, parse_size

    overrides: dict[str, Any] = {
        key: getattr(args, key)
        for key in (
            "server_url",
            "region",
            "staging",
            "user",
            "company_handle",
            "company_root",
            "dest_folder",
            "job_name",
            "follow_symlinks",
            "follow_external_symlinks",
            "concurrency",
            "max_concurrency",
            "max_files_per_post",
            "source_ip",
            "address_family",
            "ca_bundle",
            "insecure",
            "dry_run",
            "report",
            "log_format",
            "journal",
            "no_journal",
            "checksum",
            "force",
            "retry_failed",
            "api_url",
            "no_wait",
            "require_confirmation",
            "post_timeout_s",
            "stop_grace_s",
            "proxy",
            "log_level",
            "log_file",
            "include_from",
            "exclude_from",
            "ignore_case",
            "min_age",
            "max_age",
            "list_files",
            "shard",
            "shard_by",
        )
    }
    overrides.update((key, getattr(args, key)) for key in ("bwlimit", "tpslimit", "tpslimit_burst"))
    overrides["include"] = tuple(args.include) if args.include else None
    overrides["exclude"] = tuple(args.exclude) if args.exclude else None
    for key in ("max_post_bytes", "max_file_size", "min_size", "max_size"):
        value = getattr(args, key)
        overrides[key] = parse_size(value) if value is not None else None
    overrides["stats_interval_s"] = parse_duration(args.stats) if args.stats else None
    config = load_config(path=args.config, environ=os.environ, overrides=overrides)
    return _with_upload_param_flags(config, args)


def _with_upload_param_flags(config: Any, args: argparse.Namespace) -> Any:
    changes = {
        name: getattr(args, name)
        for name in (*UPLOAD_PARAM_FLAGS, "email_setting")
        if getattr(args, name) is not None
    }
    if not changes:
        return config
    try:
        params = dataclasses.replace(config.upload_params, **changes)
    except ValueError as exc:
        raise ConfigError(f"upload_params: {exc}") from exc
    return config.with_overrides(upload_params=params)


async def _upload_main(config: Any, args: argparse.Namespace) -> int:
    from bulkup.pipeline.run import RunHooks, run_upload

    stop, abort = _install_interrupt_handlers()
    progress = _progress_reporter(config)
    hooks = RunHooks(progress=progress if progress.active else None)
    try:
        if args.emulator:
            return await _upload_to_embedded(config, args, (stop, abort), hooks, progress)
        report = await run_upload(config, args.sources, stop=stop, abort=abort, hooks=hooks)
    except (ConfigError, JournalError) as exc:
        progress.finish()
        say(f"bulkup: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        progress.finish()  # the terminal is given back whatever happened
    return _finish(report, config, progress)


def _progress_reporter(config: Any) -> Any:
    """The live display when stderr is a terminal (rich is imported only then) and the
    ``stats`` events every ``stats_interval_s`` (default: 60 s off a terminal, else none)."""
    from bulkup.cli.progress import ProgressReporter

    on_terminal = sys.stderr.isatty() and not config.dry_run
    display = None
    if on_terminal:
        from bulkup.cli.progress_display import LiveDisplay

        display = LiveDisplay()
    interval = config.stats_interval_s
    if interval is None:
        interval = 0.0 if on_terminal else DEFAULT_STATS_INTERVAL_S
    return ProgressReporter(display=display, stats_interval_s=interval)


DEFAULT_STATS_INTERVAL_S = 60.0


async def _upload_to_embedded(
    config: Any,
    args: argparse.Namespace,
    signals: tuple[asyncio.Event, asyncio.Event],
    hooks: Any,
    progress: Any,
) -> int:
    from bulkup.emulator.embedded import embedded_emulator, make_sample_tree
    from bulkup.pipeline.run import run_upload

    with contextlib.ExitStack() as temporary:
        root = args.emulator_root or Path(
            temporary.enter_context(tempfile.TemporaryDirectory(prefix="bulkup-emulator-"))
        )
        sources = args.sources or [
            str(
                make_sample_tree(
                    Path(
                        temporary.enter_context(
                            tempfile.TemporaryDirectory(prefix="bulkup-sample-")
                        )
                    )
                )
            )
        ]
        async with embedded_emulator(root) as server:
            say(
                f"embedded emulator: {server.url} (files land under {server.root}"
                f"{'' if args.emulator_root else ', removed at exit'})",
                file=sys.stderr,
            )
            config = config.with_overrides(
                server_url=server.url,
                region=None,
                staging=False,
                user=server.user,
                password=server.password,
                company_handle=server.company_handle,
                company_root=server.company_root,
                journal=config.journal or (None if config.no_journal else root / "journal"),
            )
            report = await run_upload(
                config, sources, stop=signals[0], abort=signals[1], hooks=hooks
            )
        if args.emulator_root:
            report = dataclasses.replace(
                report, emulator_root=str(server.root / server.company_root)
            )
        return _finish(report, config, progress)


def _finish(report: UploadReport, config: Any, progress: Any) -> int:
    """The summary, and the JSON report: into its file, or on stdout for ``--report -``
    (the summary then goes to stderr)."""
    progress.finish()
    json_on_stdout = config.report is not None and str(config.report) == REPORT_TO_STDOUT
    for line in report.summary_lines():
        say(line, file=sys.stderr if json_on_stdout else None)
    if json_on_stdout:
        say(report.json_text(), end="")
    elif config.report is not None:
        try:
            report.write_json(config.report)
        except ReportError as exc:  # the run is over; say so, and never exit 0 or 1
            say(f"bulkup: {exc}", file=sys.stderr)
            return max(report.exit_code, EXIT_USAGE)
    return report.exit_code


def _install_interrupt_handlers() -> tuple[asyncio.Event, asyncio.Event]:
    """First SIGINT/SIGTERM: ``stop`` (no new POST or retry; the POSTs in flight get
    ``stop_grace_s``; endJob; report). Second: ``abort`` (leave at once; the journal keeps its
    last receipt, the report is still written). Third: cancel the run outright. SIGUSR2 turns
    the bandwidth limit (``--bwlimit``) off, the next one on again (a ``bwlimit_toggled``
    event each time)."""
    stop, abort = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()

    def on_interrupt() -> None:
        if abort.is_set() and main_task is not None:
            main_task.cancel()
        elif stop.is_set():
            say("\nbulkup: leaving now; POSTs in flight are abandoned", file=sys.stderr)
            abort.set()
        else:
            say(
                "\nbulkup: interrupted; no new POSTs, those in flight get stop_grace_s to "
                "finish, then the job is closed (again to leave at once)",
                file=sys.stderr,
            )
            stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_interrupt)
    from bulkup.transport.limits import BWLIMIT_SWITCH

    loop.add_signal_handler(signal.SIGUSR2, BWLIMIT_SWITCH.toggle)  # --bwlimit off and on, logged
    return stop, abort
