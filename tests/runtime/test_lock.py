"""One run per work dir: a live run's lock refuses a second one (naming it),
a dead run's lock is taken over with a warning.

The lock is an flock, held per open file: a second acquire in this process
contends with the first exactly as another process would."""
import json
import os
import socket
import subprocess

import pytest

from efficientvit_mm.errors import WorkDirBusyError
from efficientvit_mm.runtime.lock import LOCK_NAME, acquire_work_dir


def test_a_live_run_refuses_a_second_one(tmp_path):
    work_dir = str(tmp_path / 'work')
    first = acquire_work_dir(work_dir, command='tools/train.py a.py')
    with pytest.raises(WorkDirBusyError) as err:
        acquire_work_dir(work_dir)
    msg = str(err.value)
    assert f'pid {os.getpid()} on {socket.gethostname()}' in msg
    assert '(tools/train.py a.py)' in msg and 'started 20' in msg
    assert 'another --work-dir' in msg
    first.release()
    assert os.path.getsize(os.path.join(work_dir, LOCK_NAME)) == 0
    warnings = []  # a run that ended normally leaves nothing to warn about
    acquire_work_dir(work_dir, warn=warnings.append).release()
    assert warnings == []


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    gone = subprocess.Popen(['true'])
    gone.wait()  # a killed run: its details stay in the file, no flock
    (work_dir / LOCK_NAME).write_text(
        json.dumps(
            dict(pid=gone.pid, host='node7', started='2026-01-01',
                 command='tools/train.py old.py')))
    warnings = []
    lock = acquire_work_dir(str(work_dir), warn=warnings.append)
    assert len(warnings) == 1
    assert f'pid {gone.pid} on node7' in warnings[0]
    assert 'process is gone' in warnings[0]
    with open(lock.path) as f:
        assert json.load(f)['pid'] == os.getpid()
    lock.release()


def test_a_lock_that_cannot_be_written_is_not_kept(tmp_path, monkeypatch):
    """Writing the owner's details fails (a full disk): the error comes
    through and the work dir is free again, not held by a lost fd."""
    work_dir = str(tmp_path / 'work')

    def full_disk(fd, data):
        raise OSError(28, 'No space left on device')

    with monkeypatch.context() as patch:
        patch.setattr(os, 'write', full_disk)
        with pytest.raises(OSError, match='No space left'):
            acquire_work_dir(work_dir)
    acquire_work_dir(work_dir).release()  # not refused as busy
