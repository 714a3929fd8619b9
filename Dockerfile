# One image for the web (gunicorn) and worker (celery) services.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY evalsite ./evalsite
COPY annotations ./annotations
COPY generation ./generation
RUN pip install .
COPY . .
RUN DEBUG=1 python manage.py collectstatic --noinput
# var/media: the named volume of large uploads and prepared exports takes this owner when first mounted.
RUN useradd --create-home evalsite && mkdir -p /app/var/media && chown -R evalsite /app/var
USER evalsite
EXPOSE 8000
# Workers, threads and timeouts: gunicorn.conf.py (read from /app), tunable with GUNICORN_* variables.
CMD ["gunicorn", "evalsite.wsgi", "--bind", "0.0.0.0:8000"]
