# syntax=docker/dockerfile:1.7
# One image for every Weir process: `weir api | consumer | operator | migrate` (docs/architecture.md).
#
#   docker build -t ghcr.io/weir-dev/weir:dev .                 # release image (default target)
#   docker build --target dev -t ghcr.io/weir-dev/weir:dev .    # Tilt: code writable for live_update
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv with the dependencies, then the project (editable, so /app is the code) ---
FROM ${PYTHON_IMAGE} AS build
# Extra pip flags: scripts/cluster/image.sh builds offline from a wheel directory
# ("--no-index --find-links /wheels").
ARG PIP_INSTALL_FLAGS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app

# Dependencies only: this layer is rebuilt when pyproject.toml changes, not when the code does.
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt
RUN --mount=type=cache,target=/root/.cache/pip pip install -r /tmp/requirements.txt ${PIP_INSTALL_FLAGS}

# The code. An editable install puts /app/services and /app/operator on sys.path (a .pth file) and
# creates the `weir` console script; syncing new code into /app is then all a code change needs.
COPY README.md ./
COPY services/ services/
COPY operator/ operator/
RUN --mount=type=cache,target=/root/.cache/pip pip install --no-deps -e . ${PIP_INSTALL_FLAGS} \
 && python -m compileall -q services operator

# --- runtime: no compilers, no pip cache, non-root ---
FROM ${PYTHON_IMAGE} AS runtime
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WEIR_HOST=0.0.0.0 \
    WEIR_DATA_DIR=/tmp/weir-data
RUN groupadd --system --gid 10001 weir \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin weir
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
USER 10001:10001
EXPOSE 8080 9100
ENTRYPOINT ["weir"]
CMD ["api"]

# --- dev: same image, code owned by the app user so Tilt's live_update can write into /app ---
FROM runtime AS dev
USER 0
RUN chown -R 10001:10001 /app/services /app/operator
USER 10001:10001

# --- release: the default target (last stage) is the locked-down runtime image ---
FROM runtime AS release
