"""The exceptions that mean "the user can fix this".

Tools print them as one short message (see :mod:`efficientvit_mm.runtime`)
instead of a traceback; library code raises them with a message that names
the problem and the fix.
"""

__all__ = [
    'UserError', 'PreflightError', 'ConfigValueError',
    'CheckpointMismatchError', 'CheckpointFileError',
    'CheckpointNotFoundError', 'CheckpointSaveError', 'ResumeError',
    'DivergenceError', 'DataFaultError', 'WorkDirBusyError',
    'DistributedTimeoutError', 'InputError'
]


class UserError(RuntimeError):
    """A problem of the input (config, files, arguments), not a bug."""


class PreflightError(UserError):
    """A config points at something that is not there or cannot work."""


class ConfigValueError(UserError, ValueError):
    """A model argument of the config has a value the model cannot use
    (still a ``ValueError`` for code that catches those)."""


class CheckpointMismatchError(UserError):
    """A checkpoint does not fit the model it is loaded into."""


class CheckpointFileError(UserError):
    """A checkpoint file cannot be read safely (not a weights file, or a
    pickle that would run code)."""


class CheckpointNotFoundError(CheckpointFileError, FileNotFoundError):
    """A checkpoint file is not where the config says."""


class CheckpointSaveError(UserError):
    """A checkpoint could not be written (full disk, permissions)."""


class ResumeError(UserError):
    """``--resume`` has nothing to resume, or a file that cannot be."""


class DivergenceError(UserError):
    """Training produced a non-finite (or exploding) loss or gradient."""


class DataFaultError(UserError):
    """A dataset is broken: unreadable annotations, missing or undecodable
    images, an empty split, classes that do not match the model."""


class WorkDirBusyError(UserError):
    """Another run is using the work dir."""


class DistributedTimeoutError(UserError):
    """A collective operation timed out: a peer stopped answering."""


class InputError(UserError):
    """An input to predict on (image, folder, video) or an inference option
    that cannot be used."""
