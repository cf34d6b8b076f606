"""The Celery app (`celery -A dexproject worker -Q paper_trading`), used in scaled mode."""

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
        },
        "reap-dead-bots": {
            "task": "paper_trading.tasks.reap_dead_bots",
            "schedule": settings.HEARTBEAT_INTERVAL_SECONDS * 3,
        },
        "cleanup-old-sessions": {
            "task": "paper_trading.tasks.cleanup_old_sessions",
            "schedule": crontab(hour=3, minute=0),
        },
    }


@app.on_after_finalize.connect
def _schedule(sender: Celery, **kwargs: object) -> None:
    sender.conf.beat_schedule = _beat_schedule()
