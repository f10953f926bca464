# Image of the main environment: NLU service, action server, worker, channels gateway (one image, four commands).
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONPATH=/app HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# postgresql-client: pg_dump/psql for `python -m core.upgrade_check` (rehearses migrations on a copy)
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client && rm -rf /var/lib/apt/lists/*
COPY requirements/main.lock requirements/main.lock
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir -r requirements/main.lock
COPY core core
COPY nlu nlu
COPY bot bot
COPY monitoring monitoring
COPY recommender recommender
# Train at build time so replicas start with the same weights (or mount var/models instead).
RUN python -m nlu.train --out /app/var/models/nlu
USER 1000
