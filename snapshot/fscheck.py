"""Refusing unsafe places for kanban.db: memory, WSL's Windows drives, network shares.

tmpfs loses the board at every reboot (the problem snapshots solve); 9p and
drvfs (``/mnt/c`` on WSL) and NFS/CIFS do not honour the fsync, rename and
locking that atomic publishing and the one-writer lock rely on.
"""

from __future__ import annotations

import os
from pathlib import Path

from kanban_redis.errors import KanbanError

#: Filesystem type -> why it is unsafe.
UNSAFE = {
    "tmpfs": "memory only: the snapshot is lost at reboot",
    "ramfs": "memory only: the snapshot is lost at reboot",
    "9p": "a WSL/VM share (e.g. /mnt/c): fsync, rename and locks are unreliable",
    "drvfs": "a WSL Windows drive (e.g. /mnt/c): fsync, rename and locks are unreliable",
    "nfs": "a network filesystem: locks and rename are unreliable",
    "nfs4": "a network filesystem: locks and rename are unreliable",
    "cifs": "a network share: locks and rename are unreliable",
    "smb3": "a network share: locks and rename are unreliable",
    "smbfs": "a network share: locks and rename are unreliable",
}
FIX = "put it on a local disk of the Linux side (e.g. ext4 under your home), or pass --force"


class UnsafeFilesystem(KanbanError):
    """The snapshot's directory is on a filesystem where it is not safe."""


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal
    return field.encode().decode("unicode_escape")


def filesystem_of(path: Path, mountinfo: str | None = None) -> tuple[str, str]:
    """(mount point, filesystem type) of the mount that holds ``path``."""
    if mountinfo is None:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    target = os.path.realpath(path)
    best = ("/", "unknown")
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        parts, tail = left.split(), right.split()
        if len(parts) < 5 or not tail:
            continue
        point = _unescape(parts[4])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, tail[0])
    return best


def check(directory: Path, *, mountinfo: str | None = None) -> str | None:
    """None when ``directory`` is a safe place, else the reason it is not.

    A missing /proc (not Linux) counts as safe: nothing can be told.
    """
    try:
        point, fstype = filesystem_of(directory, mountinfo)
    except OSError:
        return None
    why = UNSAFE.get(fstype) or UNSAFE.get(fstype.split(".", 1)[0])
    if why is None:
        return None
    return f"{directory} is on {fstype} ({point}): {why}; {FIX}"
