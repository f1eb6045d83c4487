# syntax=docker/dockerfile:1
# Outbound Data Sync: one image for every Dagster process of a deployment. Its default command is
# the code location's gRPC server; the same image runs the webserver (`dagster-webserver`), the
# daemon (`dagster-daemon run`) and the runs that DockerRunLauncher / K8sRunLauncher start.
#
#   docker build -t outbound-data-sync:$(git rev-parse --short HEAD) .
#
# Mounted at run time, never built in: the clients file (ODS_CLIENTS_FILE), the SFTP keys
# (/etc/ods/keys), the archive (ODS_ARCHIVE_DIR) and the secrets (environment). README "Deploying".
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: the venv from uv.lock, and dbt's manifest ----------------------------------------------
FROM ${PYTHON_IMAGE} AS build
# The lock's interpreter is the base image's (never a download); .pyc files are made now, because a
# start without them re-compiles Dagster every time (8-10 s instead of 4 s; stack-notes.md).
ENV UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
RUN python -m pip install --no-cache-dir --disable-pip-version-check uv==0.13.9
WORKDIR /app
COPY deploy/image/build.sh deploy/image/build.sh
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv sh deploy/image/build.sh dependencies
COPY README.md workspace.yaml ./
COPY orchestration orchestration
COPY dbt_project dbt_project
RUN --mount=type=cache,target=/root/.cache/uv sh deploy/image/build.sh project

# ---- runtime: the venv and the project, no uv, no compilers, not root ---------------------------
FROM ${PYTHON_IMAGE} AS runtime
# gpg encrypts the files of clients with `encrypt:` (python-gnupg drives the binary).
RUN apt-get update \
    && apt-get install -y --no-install-recommends gnupg \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 ods \
    && useradd --system --uid 10001 --gid ods --create-home --home-dir /home/ods ods
COPY --from=build /app /app
COPY deploy/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
# Writable by the runs: dbt's per-invocation target folders (dagster-dbt writes them under
# dbt_project/target), Dagster's local storage (compute logs) and the archive. Mount points of the
# clients file and keys exist so that a missing mount fails with a clear "does not exist".
RUN mkdir -p /opt/dagster/dagster_home/storage /var/lib/ods/archive /etc/ods/config /etc/ods/keys \
    && chown -R ods:ods /app/dbt_project/target /opt/dagster/dagster_home/storage /var/lib/ods
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    ODS_HOME=/var/lib/ods \
    ODS_CLIENTS_FILE=/etc/ods/config/clients.yaml \
    ODS_ARCHIVE_DIR=/var/lib/ods/archive \
    ODS_DEPLOYMENT=production
USER 10001:10001
WORKDIR /app
EXPOSE 4000
# No ENTRYPOINT: Dagster's Helm chart and DockerRunLauncher give the whole command (`dagster api
# execute_run ...`, `dagster code-server start ...`).
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "orchestration.definitions"]
