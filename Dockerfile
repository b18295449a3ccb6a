# CSM Assistant: one image for every replica (docs/deploy.md).
# Build: docker build -t csm-assistant .   Run: docker compose up -d (PostgreSQL included)

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY domain ./domain
COPY scheduler ./scheduler
COPY storage ./storage
COPY templates ./templates
COPY charts ./charts
COPY decks ./decks
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A fixed, unprivileged user: files it writes (a SQLite database, say) have a known owner.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin csm
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001
WORKDIR /home/csm
# Without CSM_DATABASE_URL the assistant keeps SQLite under this volume (one replica only).
ENV CSM_DATABASE_URL=sqlite:////home/csm/data/csm.db
VOLUME ["/home/csm/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status == 200 else 1)"]
# Migrations first (concurrent replicas take turns on PostgreSQL), then the server.
CMD ["sh", "-c", "csm-bot db upgrade && exec csm-bot serve --host 0.0.0.0 --port 3000"]
