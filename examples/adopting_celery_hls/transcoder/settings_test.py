"""The app's test settings: ``manage.py test --settings transcoder.settings_test``."""

from .settings import *  # noqa: F403

# Every task runs in the caller: no broker, no worker. The swap honours it, transcoding in
# the request's thread before submit() returns.
CELERY_TASK_ALWAYS_EAGER = True
