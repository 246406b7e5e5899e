"""Checkpoint files: corrupt ones are called corrupt (not dangerous),
unreachable URLs get a message, and every write is atomic: a failure at any
moment leaves the old file, never a partial one under the final name."""
import errno
import os
import socket

import pytest
import torch

from efficientvit_mm.checkpoint import convert_file, load_checkpoint_file
from efficientvit_mm.checkpoint.io import (TEMP_PREFIX, atomic_save,
                                           atomic_write)
from efficientvit_mm.errors import CheckpointFileError, CheckpointSaveError
from helpers import load_reference


class Evil:

    def __reduce__(self):
        return (os.system, ('true', ))


def test_corrupt_files_are_called_corrupt(tmp_path):
    good = tmp_path / 'good.pth'
    torch.save({'w': torch.ones(100)}, good)
    data = good.read_bytes()
    cases = {
        'random.pth': os.urandom(4000),
        'empty.pth': b'',
        'truncated.pth': data[:len(data) // 2],
        'text.pth': b'not a checkpoint\n',
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointFileError) as err:
            load_checkpoint_file(str(tmp_path / name))
        msg = str(err.value)
        assert 'corrupt or truncated' in msg, name
        assert 'run code' not in msg, name
        assert f'{len(content)} bytes' in msg, name


def test_code_running_pickles_are_still_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'x': Evil()}, path)
    with pytest.raises(CheckpointFileError, match='could run code.*system'):
        load_checkpoint_file(str(path))


def test_unreachable_url_is_explained():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    with pytest.raises(CheckpointFileError,
                       match='cannot download .*download the file yourself'):
        load_checkpoint_file(f'http://127.0.0.1:{port}/weights.pth')


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / 'ckpt.pth'
    torch.save({'v': torch.tensor(1.)}, path)

    class Killed(BaseException):
        pass

    with pytest.raises(Killed):
        with atomic_write(str(path)) as f:
            f.write(b'half a checkpoint')
            raise Killed  # the process dies in the middle of the write
    assert torch.load(path)['v'] == 1.
    assert not [n for n in os.listdir(tmp_path) if n.startswith(TEMP_PREFIX)]
    atomic_save({'v': torch.tensor(2.)}, str(path))
    assert torch.load(path)['v'] == 2.
    assert os.listdir(tmp_path) == ['ckpt.pth']


def test_full_disk_is_a_short_error(tmp_path, monkeypatch):
    path = tmp_path / 'new.pth'

    def no_space(obj, f, *args, **kwargs):
        f.write(b'partial')
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(torch, 'save', no_space)
    with pytest.raises(CheckpointSaveError,
                       match=f'could not write {path}: no space left'):
        atomic_save({}, str(path))
    assert os.listdir(tmp_path) == []  # no partial file under any name


def test_convert_keeps_the_destination_when_the_write_fails(
        tmp_path, monkeypatch):
    src = tmp_path / 'official.pth'
    torch.save(load_reference('official_cls_m0.pth'), src)
    dst = tmp_path / 'converted.pth'
    dst.write_bytes(b'the previous conversion')
    real_save = torch.save

    def dies(obj, f, *args, **kwargs):
        real_save({'partial': torch.zeros(3)}, f)
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(torch, 'save', dies)
    with pytest.raises(CheckpointSaveError):
        convert_file(str(src), str(dst))
    assert dst.read_bytes() == b'the previous conversion'
    assert sorted(os.listdir(tmp_path)) == ['converted.pth', 'official.pth']
