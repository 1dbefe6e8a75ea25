"""The snapshotter yields the CPU to Redis and the gateways.

On a machine with a few cores a snapshot (decoding pages of tasks, SQLite
inserting them) competes with Redis for a core. At the same nice value a
Redis that wakes for a gateway's command may wait for the snapshotter's
time slice; at nice 10 the kernel gives Redis the core first (a client's
slowest reply during a snapshot of 1,000 tasks halved). A snapshot at nice
10 took no longer on an otherwise idle machine (bench/RESULTS.md).
"""

from __future__ import annotations

import os

#: The nice value ``now`` and ``run`` run at unless ``--nice`` says otherwise.
BACKGROUND_NICE = 10


def run_in_background(nice: int = BACKGROUND_NICE) -> None:
    """Run this thread, and the threads it starts from now on, at nice ``nice`` or lower priority.

    Linux sets nice values per thread and a new thread takes its creator's: call
    this before the scheduler and the fsync thread start. A process already at a
    higher nice value (lower priority) is left as it is.
    """
    if os.getpriority(os.PRIO_PROCESS, 0) < nice:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
