"""The dexpaper Django project; importing it loads the Celery app so tasks can be sent."""

from dexproject.celery import app as celery_app

__all__ = ["celery_app"]
