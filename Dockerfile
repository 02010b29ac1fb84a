# newshound: `docker build -t newshound .` then see README "Running the service".
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
# psycopg[binary] brings its own libpq: the import proves the wheel fits this image.
RUN pip install --no-cache-dir . \
    && python -c "import psycopg, psycopg_pool; print('psycopg', psycopg.__version__, psycopg.pq.__impl__)" \
    && groupadd --system --gid 10001 newshound \
    && useradd --system --create-home --uid 10001 --gid 10001 newshound \
    && mkdir -p /data \
    && chown newshound:newshound /data

# Database and feeds.yaml live in the volume (docker-compose.yml instead sets
# NEWSHOUND_DB to PostgreSQL and mounts feeds.yaml). Slack secrets
# (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET or SLACK_APP_TOKEN) come only from
# `docker run -e` or the environment of `docker compose`.
ENV NEWSHOUND_DB=/data/newshound.db \
    NEWSHOUND_CONFIG=/data/feeds.yaml
VOLUME ["/data"]

USER 10001:10001
WORKDIR /data
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4)"]
ENTRYPOINT ["newshound"]
CMD ["run", "--port", "3000"]
