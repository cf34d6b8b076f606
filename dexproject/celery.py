"""The Celery app, used in scaled mode.

Bots run on the `paper_trading` queue and short jobs on `paper_trading_jobs`:
`celery -A dexproject worker -Q paper_trading,paper_trading_jobs`, or one worker per queue.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dexproject.settings")

app = Celery("dexproject")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["paper_trading"])


def _beat_schedule() -> dict[str, dict[str, object]]:
    from django.conf import settings

    return {
        "update-all-position-prices": {
            "task": "paper_trading.tasks.update_all_position_prices",
            "schedule": settings.POSITION_UPDATE_INTERVAL_SECONDS,
            "options": {"queue": settings.CELERY_JOBS_QUEUE},
        },
        "reap-dead-bots": {
            "task": "paper_trading.tasks.reap_dead_bots",
            "schedule": settings.HEARTBEAT_INTERVAL_SECONDS * 3,
            "options": {"queue": settings.CELERY_JOBS_QUEUE},
        },
        "cleanup-old-sessions": {
            "task": "paper_trading.tasks.cleanup_old_sessions",
            "schedule": crontab(hour=3, minute=0),
            "options": {"queue": settings.CELERY_JOBS_QUEUE},
        },
    }


@app.on_after_finalize.connect
def _schedule(sender: Celery, **kwargs: object) -> None:
    sender.conf.beat_schedule = _beat_schedule()
