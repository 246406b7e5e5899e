"""Reading checkpoint files safely, and writing files atomically.

Files are read with ``torch.load(weights_only=True)``: tensors and plain
containers only, so a pickle that would run code is refused; a file that is
no checkpoint at all (random bytes, truncated, empty, text) is called
corrupt instead. Unreachable URLs give a message, not a traceback.

Writes go through :func:`atomic_write`: a temporary file in the destination's
folder, flushed and fsynced, renamed over the destination. A crash at any
moment leaves either the old file or the complete new one under the final
name, never a partial one.
"""
import contextlib
import errno
import os
import os.path as osp
import pickle
import re
import tempfile
from typing import IO, Iterator, Optional

import torch

from ..errors import (CheckpointFileError, CheckpointNotFoundError,
                      CheckpointSaveError)

# names of the temporary files atomic writes use (never a final name)
TEMP_PREFIX = '.evit-tmp-'
_GLOBAL = re.compile(r'unsupported GLOBAL ([A-Za-z_][\w.]*) ', re.I)


def load_checkpoint_file(path: str, map_location='cpu') -> dict:
    """Read a checkpoint safely (tensors and plain containers only)."""
    if path.startswith(('http://', 'https://')):
        return _load_url(path, map_location)
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise CheckpointNotFoundError(
            f'checkpoint file not found: {path!r}. Put the file there, point '
            f'init_cfg.checkpoint (or load_from) at it, or set '
            f'init_cfg=None to train from scratch.')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        code = _GLOBAL.search(str(err))
        names = [code.group(1)] if code else pickle_globals(path)
        if not names:
            raise _corrupt(path, err) from None
        raise CheckpointFileError(
            f'refusing to load {path!r}: it is not a plain weights file and '
            f'unpickling it could run code (it refers to {names[0]}). '
            f'efficientvit_mm reads checkpoints with '
            f'torch.load(weights_only=True); re-save only the state dict '
            f'from a trusted environment.') from None
    except (EOFError, RuntimeError, KeyError, ValueError, AttributeError,
            IndexError, UnicodeDecodeError) as err:
        raise _corrupt(path, err) from None


def pickle_globals(path: str) -> list:
    """The objects (``module.name``) the pickle in ``path`` (a plain
    pickle, or the ``data.pkl`` of a torch zip file) would import, read
    without running it; [] when it is no readable pickle."""
    import io
    import pickletools
    import zipfile
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next(n for n in archive.namelist()
                            if n.endswith('data.pkl'))
                data = archive.read(name)
        else:
            with open(path, 'rb') as f:
                data = f.read()
        found, strings = [], []
        for op, arg, _ in pickletools.genops(io.BytesIO(data)):
            if op.name in ('GLOBAL', 'INST'):
                found.append(str(arg).replace(' ', '.'))
            elif op.name == 'STACK_GLOBAL' and len(strings) >= 2:
                found.append('.'.join(strings[-2:]))
            elif isinstance(arg, str):
                strings.append(arg)
        return found
    except Exception:  # not a pickle: random bytes, a truncated file
        return []


def _corrupt(path: str, err: BaseException) -> CheckpointFileError:
    size = os.path.getsize(path)
    text = str(err)
    if 'WeightsUnpickler error:' in text:  # the rest is torch's advice
        text = text.split('WeightsUnpickler error:', 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = lines[0][:100] if lines else type(err).__name__
    return CheckpointFileError(
        f'{path!r} is not a readable checkpoint ({size} bytes; torch.load: '
        f'{reason}): the file is corrupt or truncated, or no checkpoint. '
        f'Use another checkpoint (or copy this one again).')


def _load_url(url: str, map_location) -> dict:
    import urllib.error
    try:
        return torch.hub.load_state_dict_from_url(url,
                                                  map_location=map_location,
                                                  weights_only=True)
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, 'reason', None) or err
        raise CheckpointFileError(
            f'cannot download {url}: {reason}. Check the address and the '
            f'network, or download the file yourself and give its local '
            f'path.') from None


@contextlib.contextmanager
def atomic_write(path: str, mode: str = 'wb') -> Iterator[IO]:
    """A file object whose content replaces ``path`` only when the block
    ends without an error (temporary file in the same folder, fsync,
    rename, fsync of the folder). On an error the temporary file is
    removed and ``path`` keeps its old content; a full disk becomes a
    :class:`CheckpointSaveError` naming the file."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX + osp.basename(path) + '.',
                               dir=folder)
    try:
        os.chmod(tmp, _file_mode(path))
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        commit(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if isinstance(err, OSError):
            raise save_error(path, err) from None
        raise


def _file_mode(path: str) -> int:
    """The permissions of ``path`` if it exists, else those a new file gets
    (mkstemp's temporary files are private)."""
    if osp.exists(path):
        return os.stat(path).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def commit(tmp: str, path: str) -> None:
    """Rename the complete file ``tmp`` over ``path`` (same folder) and make
    the rename durable."""
    os.replace(tmp, path)
    dir_fd = os.open(osp.dirname(osp.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def fsync_file(path: str) -> None:
    """Flush a file written by someone else to the disk."""
    with open(path, 'rb') as f:
        os.fsync(f.fileno())


# what to do about the errors of a write that a user can fix
_WRITE_FIXES = {
    errno.ENOSPC: 'no space left on the device: free some space or choose '
    'another --work-dir',
    errno.EDQUOT: 'disk quota exceeded: free some space or choose another '
    '--work-dir',
    errno.EACCES: 'permission denied: choose a folder you can write',
    errno.EROFS: 'the file system is read-only: choose another folder',
}
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def write_fix(err: OSError) -> Optional[str]:
    """What to do about ``err`` of a write (full disk, quota, permissions,
    read-only folder); None for the others."""
    return _WRITE_FIXES.get(err.errno)


def save_error(path: str, err: OSError) -> BaseException:
    """A :class:`CheckpointSaveError` for the errors a user can fix (see
    :func:`write_fix`); ``err`` itself otherwise."""
    fix = write_fix(err)
    if fix is None:
        return err
    return CheckpointSaveError(
        f'could not write {path}: {fix}. The previous file under that name, '
        f'if any, is intact.')


def atomic_save(obj, path: str) -> None:
    """``torch.save(obj, path)`` through :func:`atomic_write`."""
    with atomic_write(path) as f:
        torch.save(obj, f)


def atomic_write_text(path: str, text: str) -> None:
    with atomic_write(path, 'w') as f:
        f.write(text)


def is_temp_file(name: str) -> bool:
    """Whether ``name`` (a base name) is an unfinished atomic write."""
    return name.startswith(TEMP_PREFIX)
