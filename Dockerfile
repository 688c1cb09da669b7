# syntax=docker/dockerfile:1
# One image for every service of OpenMCP-Chain, chosen by argument:
#   docker run IMAGE gateway | runtime | proj-mysql | proj-redis | proj-proofs | txmanager |
#                    watcher | notary | registry | migrate | topics | dev-key | omc ARGS...
# Configured by OMC_* environment variables only (README, docs/operations.md).
# Build: docker build -t openmcp-chain .   (context filtered by .dockerignore)

ARG PYTHON_IMAGE=python:3.11-slim

# -- build: the project's wheel and every dependency, in a virtualenv ---------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
# A compiler only here, for any dependency without a wheel for this platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY libs libs
COPY services services
COPY projections projections
RUN python -m venv /opt/omc/venv \
 && /opt/omc/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/omc/venv/bin/pip install /wheels/openmcp_chain-*.whl \
 && /opt/omc/venv/bin/python -c "import omc_cli.service, omc_gateway, omc_runtime, omc_txmanager, omc_watcher, omc_proj_mysql, omc_proj_redis, omc_registry"

# -- runtime: the virtualenv and the event contract; no compiler, not root ----------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="openmcp-chain" \
      org.opencontainers.image.source="https://github.com/openmcp-chain/openmcp-chain" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 omc \
 && useradd --system --uid 10001 --gid omc --home-dir /var/lib/omc --shell /usr/sbin/nologin omc \
 && mkdir -p /var/lib/omc/runtime /var/lib/omc/notary /var/lib/omc/txmanager/keys \
 && chown -R omc:omc /var/lib/omc \
 && chmod 0700 /var/lib/omc/txmanager/keys
COPY --from=build /opt/omc/venv /opt/omc/venv
COPY schemas /opt/omc/schemas
# (named volumes mounted on the directories above start with their owner: the omc user)
ENV PATH=/opt/omc/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMC_SCHEMAS_DIR=/opt/omc/schemas \
    OMC_STACK_DIR=/var/lib/omc \
    OMC_GATEWAY_HOST=0.0.0.0 \
    OMC_REGISTRY_HOST=0.0.0.0 \
    OMC_RUNTIME_METRICS_HOST=0.0.0.0 \
    OMC_TXMANAGER_METRICS_HOST=0.0.0.0 \
    OMC_WATCHER_METRICS_HOST=0.0.0.0 \
    OMC_NOTARY_METRICS_HOST=0.0.0.0 \
    OMC_PROJ_MYSQL_METRICS_HOST=0.0.0.0 \
    OMC_PROJ_REDIS_METRICS_HOST=0.0.0.0
WORKDIR /var/lib/omc
USER 10001:10001
# gateway, registry; the metrics of proj-mysql, proj-redis, runtime, txmanager, watcher,
# notary, proj-proofs (the stack's default ports)
EXPOSE 18080 18081 18091 18092 18093 18094 18095 18096 18097
ENTRYPOINT ["python", "-m", "omc_cli.service"]
CMD ["--help"]
