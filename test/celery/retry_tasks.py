"""Tasks for the retry tests (test/integration/retry.test.ts).

`retry.probe` fails while its flag file is missing, with the repr of what it
was called with as the error, and once the file exists returns that repr: a
retry that succeeds with the repr the original failed with ran with exactly
the same arguments, Python types included. STALK_RESULT_EXTENDED=0 turns
Celery's result_extended off (the retry then reads the event's argsrepr).
"""
import os

from celery import Celery

app = Celery(
    "retry_tasks",
    broker=os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/0"),
    backend=os.environ.get("CELERY_RESULT_BACKEND") or None,
)
app.conf.update(
    task_default_queue=os.environ.get("STALK_TEST_QUEUE", "celery"),
    task_send_sent_event=True,
    worker_send_task_events=True,
    task_track_started=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_extended=os.environ.get("STALK_RESULT_EXTENDED", "1") == "1",
)


def _probe(args, kwargs):
    seen = repr((args, kwargs))
    if not os.path.exists(kwargs["flag"]):
        raise ValueError(seen)
    return seen


@app.task(name="retry.probe")
def probe(*args, **kwargs):
    return _probe(args, kwargs)


@app.task(name="retry.bulk_probe")
def bulk_probe(*args, **kwargs):
    return _probe(args, kwargs)
