"""The dexpaper Django project.

The Celery app (dexproject/celery.py) is loaded by `celery -A dexproject` and by
`paper_trading.tasks`, the only place tasks are sent from; not by every process that imports
the project (a bot run by `manage.py run_paper_bot` has no use for its ~10 MB).
"""
