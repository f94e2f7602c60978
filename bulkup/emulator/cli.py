"""``bulkup serve``: the emulator's command-line arguments and entry point."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import structlog


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``bulkup serve``."""
    parser.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default 8080; 0 = any)")
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("emulator-root"),
        help="folder that receives the files (default ./emulator-root)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML file with a [serve] table (users, companies, knobs)",
    )
    parser.add_argument(
        "--user",
        action="append",
        metavar="EMAIL:PASSWORD",
        help="a user (repeatable); default demo@example.com:demo",
    )
    parser.add_argument(
        "--company",
        action="append",
        metavar="NAME[:HANDLE]",
        help="a company (repeatable); default Demo:c|1",
    )
    parser.add_argument(
        "--idle-timeout-s",
        type=float,
        default=None,
        help="close a job idle this long (default 1800)",
    )
    parser.add_argument(
        "--processing-delay-s",
        type=float,
        default=None,
        help="process each received file this long after its POST, in the "
        "background (default 0: while the POST commits)",
    )
    parser.add_argument(
        "--done-linger-s",
        type=float,
        default=None,
        help="how long a Done job stays in getActiveJobs (default 60)",
    )
    parser.add_argument(
        "--max-file-size",
        type=int,
        default=None,
        help="largest file part in bytes (default 2147483648)",
    )
    parser.add_argument(
        "--max-parts-per-post",
        type=int,
        default=None,
        help="most parts (XML and file parts together) in one POST; one more "
        "is answered with fault 30001 (default 10000)",
    )
    parser.add_argument(
        "--header-timeout-s",
        type=float,
        default=None,
        help="drop a connection whose request head is not complete this long "
        "after it opened or after its previous answer (default 30)",
    )
    parser.add_argument(
        "--body-idle-timeout-s",
        type=float,
        default=None,
        help="drop a connection whose request body sends nothing for this long (default 60)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="most connections open at once; more are answered 503 and closed (default 1000)",
    )
    parser.add_argument(
        "--max-inflight",
        type=int,
        default=None,
        metavar="N",
        help="a server that pushes back: at most N upload POSTs in flight at "
        "once per company; one more is read to its end and answered 503 "
        "(or --pushback-status) with Retry-After; SOAP calls are not "
        "counted (default 0: no limit)",
    )
    parser.add_argument(
        "--retry-after-s",
        type=int,
        default=None,
        metavar="S",
        help="the Retry-After of a --max-inflight refusal, whole seconds (default 1)",
    )
    parser.add_argument(
        "--pushback-status",
        type=int,
        choices=(503, 429),
        default=None,
        help="the status of a --max-inflight refusal (default 503)",
    )
    parser.add_argument(
        "--response-delay-ms",
        type=float,
        default=None,
        metavar="MS",
        help="every answer (upload POSTs and SOAP calls) waits MS before it "
        "is sent, as a far server does (default 0)",
    )
    parser.add_argument(
        "--ingest-rate",
        default=None,
        metavar="RATE",
        help="the server's intake of body bytes per second, shared by every "
        "request at once, e.g. 50M or 512k (k, M, G: 1024 multiples; "
        "default: unpaced)",
    )
    parser.add_argument(
        "--faults",
        default=None,
        help="seeded fault plan, e.g. seed=7,http503=0.05,drop=0.02,fault30000=0.01,latency_ms=20",
    )
    parser.add_argument(
        "--tls-cert", type=Path, default=None, help="serve HTTPS with this PEM certificate (chain)"
    )
    parser.add_argument(
        "--tls-key", type=Path, default=None, help="the PEM private key of --tls-cert"
    )
    parser.add_argument(
        "--trust-forwarded-for",
        action="store_true",
        default=None,
        help="take the client address from X-Forwarded-For",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="log every POST (structured events on stderr)"
    )
    parser.add_argument(
        "--lenient-part-order",
        dest="strict_part_order",
        action="store_false",
        default=None,
        help="accept file parts before the XML parts",
    )


def run_serve(args: argparse.Namespace) -> int:
    """Build the settings from the flags and serve; 2 on a settings error."""
    from bulkup.emulator.faultplan import FaultPlan, FaultPlanError  # only when serving
    from bulkup.emulator.settings import SettingsError, build_settings, parse_rate

    try:
        ingest_rate = None if args.ingest_rate is None else parse_rate(args.ingest_rate)
        settings = build_settings(
            root=args.root,
            config=args.config,
            users=args.user,
            companies=args.company,
            host=args.host,
            port=args.port,
            idle_timeout_s=args.idle_timeout_s,
            processing_delay_s=args.processing_delay_s,
            done_linger_s=args.done_linger_s,
            max_file_size=args.max_file_size,
            faults=args.faults,
            max_parts_per_post=args.max_parts_per_post,
            header_timeout_s=args.header_timeout_s,
            body_idle_timeout_s=args.body_idle_timeout_s,
            max_connections=args.max_connections,
            trust_forwarded_for=args.trust_forwarded_for,
            strict_part_order=args.strict_part_order,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            max_inflight=args.max_inflight,
            retry_after_s=args.retry_after_s,
            pushback_status=args.pushback_status,
            response_delay_ms=args.response_delay_ms,
            ingest_rate=ingest_rate,
        )
        FaultPlan.parse(settings.faults)
    except (SettingsError, FaultPlanError) as exc:
        print(f"bulkup serve: {exc}", file=sys.stderr)
        return 2
    level = logging.DEBUG if args.verbose else logging.INFO
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )
    from bulkup.emulator.server import serve  # aiohttp loads only when serving

    try:
        run_loop(serve(settings))
    except OSError as exc:
        print(f"bulkup serve: cannot listen: {exc}", file=sys.stderr)
        return 3
    return 0


def run_loop(main: object) -> None:
    """Run a coroutine on uvloop when it is installed, else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)  # type: ignore[arg-type]
    else:
        uvloop.run(main)  # type: ignore[arg-type]
