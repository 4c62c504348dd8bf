"""Drives a worker through every task outcome the pipeline must record.

Prints one JSON object: outcome -> task id. Needs a worker started with
`-c 1` on the same broker, and CELERY_RESULT_BACKEND set (to see STARTED).
"""
import json
import sys
import time

from stalk_tasks import add, app, echo, fail, flaky, sleep


def wait_for(result, states, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if result.state in states:
            return
        time.sleep(0.05)
    raise SystemExit(f"task {result.id} never reached {states} (state {result.state})")


ids = {}
ok = add.apply_async((2, 3))
ids["succeeded"] = ok.id
bad = fail.apply_async(("boom <b>refused</b>",))
ids["failed"] = bad.id
retry = flaky.apply_async(("job-7",))
ids["retried"] = retry.id
hostile = echo.apply_async(("<script>alert(1)</script>", "\u00e9\u6f22\U0001F600"), {"note": "x' OR 1=1 --"})
ids["hostile"] = hostile.id
ok.get(timeout=20)
retry.get(timeout=20)
hostile.get(timeout=20)
wait_for(bad, {"FAILURE"})

# A running task killed by revoke(terminate=True).
long_task = sleep.apply_async((60,))
ids["terminated"] = long_task.id
wait_for(long_task, {"STARTED"})
app.control.revoke(long_task.id, terminate=True, signal="SIGKILL")
time.sleep(1.0)

# A task revoked while it waits behind a busy single-process worker.
blocker = sleep.apply_async((2,))
ids["blocker"] = blocker.id
wait_for(blocker, {"STARTED"})
queued = add.apply_async((40, 2))
ids["revoked_queued"] = queued.id
app.control.revoke(queued.id)
blocker.get(timeout=20)
time.sleep(1.5)

print(json.dumps(ids))
sys.stdout.flush()
