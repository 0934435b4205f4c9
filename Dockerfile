# The node image: `mediaserver serve` as a non-root user on Debian bookworm's Python 3.11.
#
#   docker build -t mediaserver .       (podman: `podman build --format docker -t mediaserver .`,
#                                        since an OCI image drops the HEALTHCHECK)
#   docker run -p 8080:8080 -e DATABASE_URL=postgresql://… mediaserver
#
# BASE_IMAGE: any Debian bookworm image where `python3 -m venv` works. Where no registry can
# be reached, tests/image.py builds one with debootstrap and passes it as a build argument.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# The dependencies alone, from pyproject.toml: a change to the code reuses this stage and the
# image's layer of it. Each ships a manylinux wheel (PyAV carries its FFmpeg, pgserver its
# PostgreSQL), so no compiler is needed.
FROM ${BASE_IMAGE} AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml /src/
RUN --mount=type=cache,target=/root/.cache/pip \
    python3 -m venv /opt/mediaserver \
    && python3 -c 'import tomllib; print(*tomllib.load(open("/src/pyproject.toml", "rb"))["project"]["dependencies"], sep="\n")' \
        > /src/requirements.txt \
    && /opt/mediaserver/bin/pip install -r /src/requirements.txt

# The project itself as one wheel.
FROM deps AS wheel
COPY README.md /src/
COPY sql /src/sql
COPY mediaserver /src/mediaserver
COPY control /src/control
COPY relay /src/relay
COPY hls /src/hls
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/mediaserver/bin/pip wheel --no-deps --wheel-dir /wheels /src

FROM ${BASE_IMAGE}
# LAME from Debian: the track ladder encodes MP3 through it (hls/lame.py), 4.5 times faster
# than the LAME inside PyAV's wheel, which it falls back to without it.
RUN if ! ldconfig -p | grep -q 'libmp3lame\.so\.0'; then \
        apt-get update && apt-get install -y --no-install-recommends libmp3lame0 \
        && rm -rf /var/lib/apt/lists/*; \
    fi
# A fixed uid/gid, so volumes have the same owner in every container of the image.
# keys/ exists in the image so that a fresh named volume mounted there belongs to that user.
RUN groupadd --gid 10001 mediaserver \
    && useradd --uid 10001 --gid mediaserver --no-create-home --home-dir /var/lib/mediaserver \
        --shell /usr/sbin/nologin mediaserver \
    && install -d -o mediaserver -g mediaserver -m 0750 /var/lib/mediaserver \
        /var/lib/mediaserver/keys \
    && install -d -o mediaserver -g mediaserver -m 0700 /run/user/10001
COPY --from=deps /opt/mediaserver /opt/mediaserver
# COPY, not RUN --mount=from=wheel: buildah (podman build) reuses a cached RUN whose mounted
# stage changed, which would keep the old code.
COPY --from=wheel /wheels /tmp/wheels
RUN /opt/mediaserver/bin/pip install --no-deps --no-index --disable-pip-version-check \
        /tmp/wheels/*.whl \
    && rm -r /tmp/wheels
# MEDIASERVER_DATA_DIR holds the generated secrets (keys/), the filesystem object store and,
# without DATABASE_URL, the embedded PostgreSQL (single node): a volume there keeps them.
# XDG_RUNTIME_DIR: where the embedded PostgreSQL keeps its lock file (the user's own, 0700).
ENV PATH=/opt/mediaserver/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    XDG_RUNTIME_DIR=/run/user/10001 \
    MEDIASERVER_HOST=0.0.0.0 \
    MEDIASERVER_PORT=8080 \
    MEDIASERVER_DATA_DIR=/var/lib/mediaserver
USER mediaserver:mediaserver
WORKDIR /var/lib/mediaserver
EXPOSE 8080
# Readiness, as the Helm chart probes it: /readyz answers 503 once the node shuts down or
# loses its database (not for a Redis or object-store outage, which /v1/health reports).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('MEDIASERVER_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["mediaserver"]
CMD ["serve"]
