"""The one error type the `ncp` command turns into a one-line message (stderr, exit code 2)."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class UsageError(ValueError):
    """A user-facing mistake: bad id, preset, cell, flag combination or file.

    The message is one line that names the problem and lists what is valid.
    """


def unknown(kind: str, given: str, valid: Iterable[str], hint: str = "") -> UsageError:
    """Build the ``unknown <kind>`` error, with a close-match suggestion and the valid choices.

    :param kind: what was looked up, e.g. ``"preset"``
    :param given: the value the user gave
    :param valid: the accepted values
    :param hint: optional extra text appended to the message
    :return: the error to raise
    """
    valid = sorted(valid)
    close = difflib.get_close_matches(given, valid, n=1)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    extra = f"; {hint}" if hint else ""
    return UsageError(f"unknown {kind} {given!r}{guess}; valid: {', '.join(valid)}{extra}")
