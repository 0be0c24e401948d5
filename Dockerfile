# sneakerd as one container: `docker build -t sneakerd .`, then see compose.yaml for MariaDB,
# Redis and two nodes behind nginx. The settings are the environment variables of
# `.env.example` (README "Configuration").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The package alone: tests, load tests and docs stay out of the image (.dockerignore).
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sneakerd ./sneakerd
RUN pip install . \
    && rm -rf /src \
    && useradd --system --uid 10001 --user-group --home-dir /data --create-home sneakerd

# Never root: the process owns only /data (the embedded SQLite file and its JWT secret, when
# no DATABASE_URL is given).
USER sneakerd
WORKDIR /data
ENV HOST=0.0.0.0 \
    PORT=5000
EXPOSE 5000

# /healthz answers as soon as the process serves (/readyz also waits for the database and the
# drops' recovery: balancers use that one). No curl in the slim image: Python asks.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '5000'), timeout=2)"]

CMD ["sneakerd", "serve", "--host", "0.0.0.0"]
