# Production image: daphne serving HTTP and WebSockets; the same image runs Celery
# workers (`celery -A reeleditor worker`). Configure it with the environment variables
# in the README.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    REELEDITOR_DATA_DIR=/data

# The web image leaves out the PyTorch stack. For an export worker that upscales, build
# with REQUIREMENTS=requirements-upscale.txt; PIP_EXTRA_INDEX_URL may then point at
# PyTorch's CPU wheel index for a CPU-only worker (otherwise the pinned torch comes from
# PyPI with its CUDA libraries, what GPU workers want).
ARG REQUIREMENTS=requirements.txt
ARG PIP_EXTRA_INDEX_URL=""

WORKDIR /app
COPY requirements.txt requirements-upscale.txt ./
RUN pip install --no-cache-dir -r ${REQUIREMENTS}

COPY . .
RUN DJANGO_DEBUG=false DJANGO_SECRET_KEY=collectstatic-only \
    python manage.py collectstatic --noinput \
    && useradd --create-home --uid 1000 reeleditor \
    && mkdir -p /data && chown reeleditor /data

USER reeleditor
VOLUME ["/data"]
EXPOSE 8000
CMD ["sh", "-c", "python manage.py migrate --noinput && exec python -m reeleditor.serve --bind 0.0.0.0:8000 --processes ${WEB_PROCESSES:-auto}"]
