#!/bin/sh
# The image's build steps. The Dockerfile runs them (`RUN sh deploy/image/build.sh <step>`) in its
# build stage, with the project root as working directory; tests/test_deploy_files.py runs the same
# steps in a fresh copy of the project, so they are tested on machines without a Docker engine.
#
#   sh deploy/image/build.sh dependencies   # third-party packages from uv.lock (a layer of its own,
#                                           # rebuilt only when pyproject.toml or uv.lock change)
#   sh deploy/image/build.sh project        # the project itself, then dbt's manifest
#
# uv (pinned in the Makefile and the dev group) must be on PATH, or named by $UV.
set -eu

UV="${UV:-uv}"

# Exactly the lock (--frozen), without the dev group (pytest, ruff, uv itself), with Dagster's run
# launchers for Docker and Kubernetes. The venv is .venv in the project root.
sync() {
    "$UV" sync --frozen --no-dev --extra docker --extra k8s "$@"
}

case "${1:-}" in
    dependencies)
        sync --no-install-project
        ;;
    project)
        # The project is installed editable (uv's default), on purpose: orchestration/paths.py
        # finds dbt_project/, workspace.yaml and config/ beside the package's folder, which a copy in
        # site-packages would not have.
        sync
        # dbt's manifest, which the code location reads at load (dagster-dbt parses nothing in
        # production). `ods parse` is what `make` runs: the venv's dbt, no database needed.
        .venv/bin/ods parse
        test -s dbt_project/target/manifest.json
        ;;
    *)
        echo "usage: $0 dependencies|project" >&2
        exit 2
        ;;
esac
