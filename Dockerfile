# One image for every tillflow service (api, simulator, topic creation; flows and batch later).
FROM python:3.11-slim
# Production: the API, the flows and the scheduler refuse to start until the secrets are given
# in the environment (TILLFLOW_JWT_SECRET, TILLFLOW_ADMIN_PASSWORD_HASH; see .env.example).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TILLFLOW_RUNTIME_DIR=/var/lib/tillflow \
    TILLFLOW_ENVIRONMENT=production
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock
COPY schemas schemas
COPY simulator simulator
COPY ingest ingest
COPY api api
COPY cli cli
COPY infra infra
COPY observability observability
COPY featurestore featurestore
COPY flows flows
COPY online_models online_models
COPY batch batch
COPY registry registry
COPY graph graph
COPY search search
RUN pip install --no-cache-dir --no-deps . \
    && useradd --system --uid 10001 --home-dir /var/lib/tillflow tillflow \
    && mkdir -p /var/lib/tillflow && chown tillflow /var/lib/tillflow
USER tillflow
EXPOSE 8000
ENTRYPOINT ["tillflow"]
CMD ["api", "--host", "0.0.0.0"]
