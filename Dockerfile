# The q2q-registry reconciler: `q2q run` serving the HTTP API on port 3005.
FROM python:3.11-slim

# GitPython drives the git binary to clone and read the models repository.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir .

RUN useradd --create-home --uid 10001 q2q \
    && mkdir -p /var/cache/q2q \
    && chown q2q /var/cache/q2q
USER q2q
ENV XDG_CACHE_HOME=/var/cache/q2q \
    Q2Q_HOST=0.0.0.0 \
    Q2Q_PORT=3005 \
    Q2Q_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
EXPOSE 3005

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request, sys; urllib.request.urlopen('http://127.0.0.1:3005/healthz', timeout=4); sys.exit(0)"

CMD ["q2q", "run"]
