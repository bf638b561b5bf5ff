# The paycore image: one image for every process (`paycore api`, `worker`, `migrate`, `up`, …).
#
# Two stages. `build` installs paycore and what running it needs (no development extra) into a
# virtualenv; the final stage is a clean Python with only that virtualenv copied in (no pip, no
# build files, no sources beside the installed package) and runs as an unprivileged user
# (uid/gid 10001). Nothing is written outside PAYCORE_DATA_DIR (/data) and /tmp, so containers
# can run with a read-only root filesystem (deploy/k8s does).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/paycore
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
# runtime dependencies only (`.[dev]` is never installed here); then pip itself goes
RUN /opt/paycore/bin/pip install . \
    && /opt/paycore/bin/pip uninstall --yes pip

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/paycore/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PAYCORE_DATA_DIR=/data \
    PAYCORE_HOST=0.0.0.0
RUN groupadd --system --gid 10001 paycore \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home paycore \
    && mkdir /data && chown 10001:10001 /data
COPY --from=build /opt/paycore /opt/paycore
WORKDIR /app
USER 10001:10001
EXPOSE 8000 8010
ENTRYPOINT ["paycore"]
CMD ["up"]
