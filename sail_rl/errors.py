"""User-facing errors: one line (what, where, how to fix) and a non-zero exit.

The CLI catches `SailRLError` and prints its message alone; `--debug` shows the traceback.
Everything a user can get wrong (a recipe key, a path, an image, a reward function) raises
one of these, never a bare KeyError from deep inside.
"""

from __future__ import annotations


class SailRLError(Exception):
    """An error the user can fix. `exit_code` is what the CLI exits with."""

    exit_code = 1


class ConfigError(SailRLError):
    """A recipe or override that does not fit the config dataclasses.

    `key`: the field the error is about, dotted, relative to the config whose `validate`
    raised it; the recipe loader turns it into that key's file line (or override).
    """

    exit_code = 2

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class DataError(SailRLError):
    """A dataset file, field or image that cannot be used."""

    exit_code = 2


class ImageTokenMismatchError(SailRLError):
    """The number of <IMG_CONTEXT> tokens differs from the number of image features."""

    exit_code = 2


class RewardError(SailRLError):
    """A reward function that cannot be loaded or returned something unusable."""

    exit_code = 2

