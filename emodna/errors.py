"""User-facing errors.

Every problem a user can fix themselves (a bad file, a bad folder, a typo in a config)
raises a subclass of :class:`EmodnaError` whose message names the thing and the fix.
The CLI prints such errors as one line and exits with status 2, never with a traceback.
"""


class EmodnaError(Exception):
    """Base class: an error whose message is meant for the user, in one line."""


class CorpusError(EmodnaError):
    """A corpora folder, corpus folder or file name that cannot be read as a corpus."""


class LabelError(EmodnaError):
    """An emotion label that is unknown or missing from the arousal/valence mapping."""


class FeatureError(EmodnaError):
    """Audio that cannot be turned into features, or a broken feature cache."""


class ConfigError(EmodnaError):
    """A config or search-space file with a wrong key, type or value."""


class TrainingError(EmodnaError):
    """Training cannot go on (a NaN or inf loss term, a checkpoint of another shape)."""


class DivergedError(TrainingError):
    """A loss term became NaN or infinite: the config diverged (``term`` names the loss term).

    A property of the config, not a fault of the machine: retrying it reproduces it.
    """

    def __init__(self, message: str, term: str):
        super().__init__(message)
        self.term = term
