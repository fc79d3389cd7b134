# nbi: one image for the API replicas and the learner worker (the command picks the role).
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bandit ./bandit
COPY simulator ./simulator
COPY offline_eval ./offline_eval
COPY service ./service
RUN pip install . \
    && useradd --create-home --uid 10001 nbi \
    && mkdir -p /data/models \
    && chown -R nbi:nbi /data

USER nbi
ENV NBI_MODEL_DIR=/data/models
EXPOSE 8000
ENTRYPOINT ["nbi"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
