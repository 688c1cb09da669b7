"""The Redis read model: live status and latest events per task, feeding the gateway's
Server-Sent Events.

    keys.py       the key names (`<prefix>:task:<task_id>:status`, `…:events`, offsets)
    view.py       pure: the task-event JSON item, the status machine (no I/O)
    projector.py  the consumer loop: a batch's writes and its offsets in one MULTI/EXEC
    queries.py    what the gateway imports: task_status, read_events, last_sequence
    __main__.py   `python -m omc_proj_redis [--rebuild] [--until-caught-up]`

Every key is disposable: `--rebuild` deletes them and replays the log from offset 0.
"""
