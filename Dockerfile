# One image for every service and the gateway; compose.yaml picks the command.
# It holds no secret and does not set GNODE_DEV_MODE: a container refuses to start without real
# INTERNAL_SECRET (and JWT_SECRET for auth and the gateway) given at run time.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY gateway ./gateway
COPY services ./services
COPY stack ./stack
RUN pip install --no-cache-dir . && mkdir -p /tmp/prometheus /data/neo /data/files \
    && useradd --system --uid 1000 gnode && chown -R gnode /tmp/prometheus /data
USER gnode
EXPOSE 8000
CMD ["gunicorn", "-c", "python:shared.gunicorn_conf", "-b", "0.0.0.0:8000", "gateway.app:create_app()"]
