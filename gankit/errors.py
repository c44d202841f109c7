"""User-facing errors: the CLI prints them as one line and exits with code 2."""


class GankitError(Exception):
    """An error caused by the user's input (file, config, checkpoint), not by a bug.

    The message must say what to fix; the CLI prints ``error: <message>`` and exits 2.
    """


class ConfigError(GankitError):
    """A bad configuration key, value or preset."""


class DataError(GankitError):
    """Missing, empty or unusable data."""


class CheckpointError(GankitError):
    """A checkpoint that is missing, corrupt or belongs to another model."""


class Unsupported(GankitError):
    """A command asked a net or model for something it does not declare (``mix`` on a net
    without style layers, ``project`` into w on a DCGAN)."""


class TrainingDiverged(GankitError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingInterrupted(Exception):
    """A requested stop (Ctrl-C, SIGTERM): raised after the checkpoint was written.

    ``signal`` is the number of the signal that asked for it: the CLI exits 128 + signal."""

    def __init__(self, message: str, signal: int = 2):
        super().__init__(message)
        self.signal = int(signal)
