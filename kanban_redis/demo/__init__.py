"""``make demo`` (``python -m kanban_redis.demo``): the whole story on one machine.

Gateways enqueue tasks, ``kanban-worker`` processes run them, ``kanban-snapshot
run`` publishes ``kanban.db``; then a WSL shutdown is simulated (everything
stopped, Redis wiped), the board is restored from ``kanban.db`` and the work
goes on. :mod:`.tasks` is what the gateways create and what the workers run,
:mod:`.fleet` starts and stops the processes and the Redis, :mod:`.story`
tells the story.
"""
