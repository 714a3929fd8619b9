#!/usr/bin/env python
"""Django's command-line utility for evalsite."""
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
    try:
        from django.core.management import execute_from_command_line
    except ImportError as exc:
        raise ImportError(
            "Couldn't import Django. Are you sure it's installed and "
            "available on your PYTHONPATH environment variable? Did you "
            "forget to activate a virtual environment? "
            "(Here: `make install` creates .venv; then run `.venv/bin/python manage.py ...`.)"
        ) from exc
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
