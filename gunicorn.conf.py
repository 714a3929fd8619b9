"""Gunicorn settings, read from the working directory (the Docker image and bench/annotate.py use it).

Sized for a small machine and tunable from the environment: GUNICORN_WORKERS, GUNICORN_THREADS,
GUNICORN_TIMEOUT. The command line (e.g. --bind) still overrides anything here.
"""
import multiprocessing
import os

# Requests are short and spend part of their time waiting on PostgreSQL, so a few more processes
# than cores keep the CPUs busy (gunicorn's own rule: 2 x cores + 1; 5 on a 2-core machine). The
# cores are those this process may run on; capped, since a container may see the host's count.
_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else multiprocessing.cpu_count()
workers = int(os.environ.get("GUNICORN_WORKERS") or min(2 * _cores + 1, 17))
# Threads > 1 switch to the gthread worker, which also keeps connections alive between requests.
threads = int(os.environ.get("GUNICORN_THREADS") or 1)
worker_class = "gthread" if threads > 1 else "sync"
# A large upload of system outputs is parsed and written inside one request: allow it minutes.
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 120)
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so that a slow leak never grows without bound.
max_requests = 5000
max_requests_jitter = 500
# "-" logs requests to stdout; an empty value turns the access log off (as the benchmark does).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
