"""One run per work dir.

A training run holds an exclusive ``flock`` on ``<work_dir>/run.lock`` for
as long as it lives, and writes its pid, host, start time and command into
the file. The kernel drops the lock when the process ends, however it ends,
so a second run is refused exactly while the first one lives, and the
message names it. A lock file whose process has gone (killed, crashed) still
holds that process's details: the next run takes it over and says so. A run
that ends normally empties the file.
"""
import datetime
import fcntl
import json
import os
import os.path as osp
import socket
import sys
from dataclasses import dataclass
from typing import Callable, Optional

from ..errors import WorkDirBusyError

LOCK_NAME = 'run.lock'


def _describe(owner: dict) -> str:
    return (f'pid {owner.get("pid", "?")} on {owner.get("host", "?")}, '
            f'started {owner.get("started", "?")}'
            f'{" (" + owner["command"] + ")" if owner.get("command") else ""}')


def _read_owner(fd: int) -> Optional[dict]:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 1 << 16).decode(errors='replace').strip()
    if not text:
        return None
    try:
        owner = json.loads(text)
    except ValueError:
        return {'pid': '?', 'host': '?', 'started': '?'}
    return owner if isinstance(owner, dict) else {}


@dataclass
class RunLock:
    """The lock of a work dir, held through ``fd`` until :meth:`release`."""
    path: str
    fd: int

    def release(self) -> None:
        if self.fd < 0:
            return
        os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = -1


def acquire_work_dir(work_dir: str, command: str = '',
                     warn: Callable[[str], None] = None) -> RunLock:
    """Lock ``work_dir`` for this process, or raise
    :class:`WorkDirBusyError` naming the run that holds it. ``warn`` gets
    one line when a stale lock is taken over."""
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = _read_owner(fd) or {}
        os.close(fd)
        raise WorkDirBusyError(
            f'{work_dir} is in use by another run: {_describe(owner)}. Wait '
            f'for it to end or stop it, or choose another --work-dir.') \
            from None
    try:
        stale = _read_owner(fd)
        if stale is not None and warn is not None:
            warn(f'taking over the lock of {work_dir} left by a run whose '
                 f'process is gone: {_describe(stale)}')
        info = dict(
            pid=os.getpid(), host=socket.gethostname(),
            started=datetime.datetime.now().isoformat(timespec='seconds'),
            command=command or ' '.join(sys.argv))
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(info) + '\n').encode())
        os.fsync(fd)
    except BaseException:  # a full disk: the lock must not outlive this
        os.close(fd)
        raise
    return RunLock(path, fd)
