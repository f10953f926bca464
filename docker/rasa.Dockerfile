# Rasa Open Source 3.6 on Python 3.10 with the core-only model trained in.
FROM python:3.10-slim
WORKDIR /app
ENV RASA_TELEMETRY_ENABLED=false PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements/rasa.lock requirements/rasa.lock
RUN pip install --no-cache-dir -r requirements/rasa.lock
COPY bot bot
RUN python bot/rasa_launch.py train core --config bot/config.yml --domain bot/domain.yml \
      --stories bot/data/rules.yml --out /app/models --fixed-model-name core
USER 1000
