# The waystation image: the API (`waystation run`) and the workers (`waystation worker`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY waystation waystation
COPY geo geo
COPY store store
COPY streams streams
COPY services services
COPY demo demo
# psycopg: the PostgreSQL driver for WAYSTATION_DATABASE_URL=postgresql+psycopg://...
RUN pip install . "psycopg[binary]>=3.1,<4"

# WAYSTATION_DATA_DIR in docker-compose.yml: owned by the user the processes run as (a named
# volume mounted there takes this ownership), so the API and the workers can write to it.
RUN useradd --create-home --uid 10001 waystation \
    && mkdir -p /var/lib/waystation \
    && chown waystation /var/lib/waystation
USER waystation
EXPOSE 8000 6066
CMD ["waystation", "run"]
