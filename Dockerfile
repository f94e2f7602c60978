# bulkup in a container: a slim Python base, the project installed from its own files, run as
# a non-root user. Build: docker build -t bulkup:0.1.0 .   Manifests: deploy/kubernetes/.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY bulkup ./bulkup
RUN pip install . && rm -rf /src

RUN groupadd --gid 10001 bulkup \
    && useradd --uid 10001 --gid bulkup --home-dir /home/bulkup --create-home \
       --shell /usr/sbin/nologin bulkup
USER 10001:10001
WORKDIR /home/bulkup
ENV XDG_STATE_HOME=/home/bulkup/.local/state

# SIGTERM is handled by bulkup itself (graceful stop: stop_grace_s, then endJob, report,
# journal), so it runs as PID 1 directly, without a shell in front of it.
ENTRYPOINT ["bulkup"]
CMD ["--help"]
