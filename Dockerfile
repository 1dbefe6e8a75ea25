# The image behind compose.yaml's restore, snapshot and worker services.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY kanban_redis ./kanban_redis
COPY workers ./workers
COPY snapshot ./snapshot
RUN pip install . \
    && useradd --uid 1000 --create-home kanban \
    && mkdir /data && chown kanban /data
# uid 1000 owns the bind-mounted data directory on most single-user hosts
# (WSL's first user); elsewhere set `user:` in compose.yaml or chown the directory.
USER kanban
WORKDIR /data
CMD ["kanban", "--help"]
