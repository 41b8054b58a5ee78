"""Flow control and schedules (DESIGN §6c): idempotency keys and deadlines on
``start``, named queues with limits, durable cron schedules.

Modules::

    deadlines   a run's deadline: when it is, the messages that wake the run at it,
                and failing a run whose deadline passed (``RUN_DEADLINE_EXCEEDED``)
    queues      ``Queue`` declarations and admission: which waiting runs of a named
                queue a worker starts, under the queue's limits
    cron        a small parser of standard 5-field cron (optionally with seconds)
    schedules   ``schedule()`` and the firing of due ticks, one run per tick
"""
