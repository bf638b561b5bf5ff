# The paycore image: the `paycore` command (API, worker, migrations, embedded broker).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /data paycore \
    && mkdir -p /data && chown paycore /data

USER paycore
ENV PAYCORE_DATA_DIR=/data \
    PAYCORE_HOST=0.0.0.0
EXPOSE 8000 8010
ENTRYPOINT ["paycore"]
CMD ["up"]
