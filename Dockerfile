# The Laneway image: one image for the worker (default) and the HTTP API (`laneway api`).
# The interpreter matches the one the project is tested with (pyproject: mypy python_version).

FROM python:3.11-slim-bookworm AS build
# Same uv as the Makefile; installed from PyPI like the Makefile does.
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first, in their own layer: a source change does not reinstall them.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
# README.md is the package's readme: building the project needs it.
COPY README.md ./
COPY laneway/ laneway/
COPY workflows/ workflows/
COPY activities/ activities/
COPY store/ store/
COPY workers/ workers/
COPY client/ client/
COPY dev/ dev/
COPY emulator/ emulator/
RUN uv sync --frozen --no-dev

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin laneway \
    && install -d -o laneway -g laneway /var/lib/laneway
# Same path as in the build stage: the virtualenv's scripts and editable install point at /app.
COPY --from=build /app /app
WORKDIR /app
# A named volume mounted on /var/lib/laneway starts with this directory's owner.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LANEWAY_DATA_DIR=/var/lib/laneway
USER laneway
CMD ["laneway", "worker"]
