# One image for every tillflow service (api, simulator, topic creation; flows and batch later).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TILLFLOW_RUNTIME_DIR=/var/lib/tillflow
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
RUN pip install --no-cache-dir --no-deps .
EXPOSE 8000
ENTRYPOINT ["tillflow"]
CMD ["api", "--host", "0.0.0.0"]
