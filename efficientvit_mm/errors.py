"""The exceptions that mean "the user can fix this".

Tools print them as one short message (see :mod:`efficientvit_mm.runtime`)
instead of a traceback; library code raises them with a message that names
the problem and the fix.
"""

__all__ = [
    'UserError', 'PreflightError', 'CheckpointMismatchError',
    'CheckpointFileError', 'CheckpointNotFoundError', 'InputError'
]


class UserError(RuntimeError):
    """A problem of the input (config, files, arguments), not a bug."""


class PreflightError(UserError):
    """A config points at something that is not there or cannot work."""


class CheckpointMismatchError(UserError):
    """A checkpoint does not fit the model it is loaded into."""


class CheckpointFileError(UserError):
    """A checkpoint file cannot be read safely (not a weights file, or a
    pickle that would run code)."""


class CheckpointNotFoundError(CheckpointFileError, FileNotFoundError):
    """A checkpoint file is not where the config says."""


class InputError(UserError):
    """An input to predict on (image, folder, video) or an inference option
    that cannot be used."""
