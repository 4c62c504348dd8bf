"""Celery tasks the integration tests run on a real worker (Debian's python3-celery).

Broker and result backend come from the environment, so the same module runs
against Redis and RabbitMQ.
"""
import os
import time

from celery import Celery
from celery.contrib.abortable import AbortableTask

app = Celery(
    "stalk_tasks",
    broker=os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/0"),
    backend=os.environ.get("CELERY_RESULT_BACKEND") or None,
)
app.conf.update(
    # Test files running at once on one broker each use a queue of their own.
    task_default_queue=os.environ.get("STALK_TEST_QUEUE", "celery"),
    task_send_sent_event=True,
    worker_send_task_events=True,
    task_track_started=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
)


@app.task(name="stalk.add")
def add(x, y):
    return x + y


@app.task(name="stalk.fail")
def fail(message):
    raise ValueError(message)


@app.task(bind=True, name="stalk.flaky", max_retries=3)
def flaky(self, label):
    """Fails its first run, succeeds on the retry."""
    if self.request.retries < 1:
        raise self.retry(exc=RuntimeError(f"{label} not ready"), countdown=0.2)
    return f"{label} ok after {self.request.retries} retry"


@app.task(name="stalk.sleep")
def sleep(seconds):
    time.sleep(seconds)
    return seconds


@app.task(name="stalk.lost_probe")
def lost_probe(seconds):
    """stalk.sleep under a name only test/integration/lost.test.ts uses: other
    files' workers on the shared broker cannot add to its LOST counts."""
    time.sleep(seconds)
    return seconds


@app.task(name="stalk.echo")
def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


@app.task(bind=True, base=AbortableTask, name="stalk.abortable")
def abortable(self, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if self.is_aborted():
            return "aborted"
        time.sleep(0.1)
    return "finished"
