# The engine's image: one Python environment, every process (consumer, relay, admin CLI) from it.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY projections ./projections
COPY consumers ./consumers
COPY producers ./producers
COPY commcredits ./commcredits
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["commcredits"]
