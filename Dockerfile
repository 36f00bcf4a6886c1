# mopsbot: the Slack app on a slim Python base, running as a non-root user.
# Configure with environment variables (see README); mount or bake in your own workspace at /app/workspace.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MOPSBOT_WORKSPACE=/app/workspace \
    MOPSBOT_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --upgrade pip && pip install ".[postgres]"

COPY knowledge ./workspace/knowledge
COPY tools ./workspace/tools

RUN useradd --system --uid 10001 --home-dir /app mopsbot && mkdir -p /data && chown mopsbot /data
USER mopsbot
VOLUME ["/data"]
EXPOSE 3000

CMD ["mopsbot", "serve"]
