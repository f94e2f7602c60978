"""The sinks ``throughput.py`` uploads into, and what their access logs say about a run.

Both sinks read every request body whole before answering 200 with an ``uploadPostReturn``
document, and log one line per answered POST:

    <status> <request bytes> <end, epoch seconds> <duration, seconds>

so the harness can check the bytes a client claims to have sent, and time the transfer at the
server: from the first request's first byte to the last answer (``SinkWindow``). That time
leaves out what happens in the client before its first byte (interpreter start, imports,
walking the tree) and after its last answer (shutdown), the same way for every client.

- ``NginxSink``: the bench kit's nginx sink (``sink.sh``: same module, same answer, same
  limits), with two more log columns and no log buffering. nginx's times have 1 ms resolution.
- ``PySink``: ``py_sink.py``, the same contract in Python, for machines without nginx.
"""

from __future__ import annotations

import abc
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from local_servers import free_ports

HERE = Path(__file__).resolve().parent
ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"
ANSWER = (
    '<uploadPostReturn xmlns="http://www.scene7.com/IpsApi/xsd/2014-04-03">'
    "<jobHandle>j|1||sink|1</jobHandle></uploadPostReturn>"
)

NGINX_CONF = """load_module {module};
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
  log_format up '$status $request_length $msec $request_time';
  access_log {dir}/logs/access.log up;
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/tmp/p; fastcgi_temp_path {dir}/tmp/f;
  uwsgi_temp_path {dir}/tmp/u; scgi_temp_path {dir}/tmp/s;
  keepalive_requests 1000000; keepalive_timeout 75s; client_max_body_size 0;
  server {{
    listen 127.0.0.1:{port}; listen 127.0.0.1:{tls_port} ssl;
    ssl_certificate {dir}/cert.pem; ssl_certificate_key {dir}/key.pem;
    client_body_buffer_size 32m;
    location = /scene7/UploadFile {{
      if ($request_method != POST) {{ return 405; }}
      default_type text/xml;
      echo_read_request_body;
      echo -n '{answer}';
    }}
  }}
}}
"""


@dataclass(frozen=True)
class SinkWindow:
    """What the sink logged for one run: POSTs answered 200, their bytes, the transfer time
    from the first request's start to the last request's end (seconds), and when that first
    request started (seconds since the epoch, 0.0 when there was none)."""

    posts: int
    bytes: int
    transfer_s: float
    first_at: float = 0.0


def read_window(log: Path, skip: int) -> SinkWindow:
    """The lines after the first ``skip`` ones (the runs before this one)."""
    rows = [line.split() for line in _lines(log)[skip:]]
    done = [r for r in rows if r[0] == "200"]
    if not done:
        return SinkWindow(0, 0, 0.0)
    first = min(float(r[2]) - float(r[3]) for r in done)
    last = max(float(r[2]) for r in done)
    return SinkWindow(len(done), sum(int(r[1]) for r in done), last - first, first)


def _lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


class Sink(abc.ABC):
    """A started sink: its URLs, its CA certificate, and its log."""

    def __init__(self, where: Path) -> None:
        self.dir = where
        self.port, self.tls_port = free_ports(2)

    @property
    def ca(self) -> Path:
        return self.dir / "cert.pem"

    @property
    def log(self) -> Path:
        return self.dir / "logs" / "access.log"

    def url(self, tls: bool) -> str:
        return (
            f"https://127.0.0.1:{self.tls_port}" if tls else f"http://127.0.0.1:{self.port}"
        ) + "/scene7/UploadFile"

    def mark(self) -> int:
        """Where the next run's log lines begin."""
        return len(_lines(self.log))

    def window(self, mark: int) -> SinkWindow:
        """The run since ``mark``; waits for the log to settle (a line is written just after
        its answer is sent, so a client can exit before its last line lands)."""
        seen = read_window(self.log, mark)
        for _ in range(50):
            time.sleep(0.02)
            again = read_window(self.log, mark)
            if again == seen:
                return again
            seen = again
        return seen

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    def _make_certificate(self) -> None:
        if not self.ca.exists():
            subprocess.run(
                [
                    "openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    str(self.dir / "key.pem"),
                    "-out",
                    str(self.ca),
                    "-days",
                    "30",
                    "-subj",
                    "/CN=127.0.0.1",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                ],
                check=True,
                capture_output=True,
            )


class NginxSink(Sink):
    """nginx from Debian's packages (nginx-light, libnginx-mod-http-echo)."""

    def start(self) -> None:
        if not Path(ECHO_MODULE).exists():
            sys.exit(
                "the nginx sink needs: apt-get install -y nginx-light "
                "libnginx-mod-http-echo (or use --sink python)"
            )
        for sub in ("logs", "body", "tmp"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self._make_certificate()
        conf = self.dir / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                module=ECHO_MODULE,
                dir=self.dir,
                port=self.port,
                tls_port=self.tls_port,
                answer=ANSWER,
            )
        )
        subprocess.run(["nginx", "-p", str(self.dir), "-c", str(conf)], check=True)

    def stop(self) -> None:
        pid_file = self.dir / "nginx.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGQUIT)


class PySink(Sink):
    """``py_sink.py``: slower than nginx (one Python process); use it to check the harness."""

    def __init__(self, where: Path, tls: bool) -> None:
        super().__init__(where)
        self.tls = tls
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, str(HERE / "py_sink.py"), str(self.dir), str(self.port)]
        if self.tls:
            self._make_certificate()
            argv += [str(self.tls_port), str(self.ca), str(self.dir / "key.pem")]
        self._process = subprocess.Popen(argv, stdout=subprocess.PIPE)
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != b"ready":
            raise RuntimeError("py_sink.py did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=30)
