"""Why a state file cannot be used: each message names the file and says what to do."""

from __future__ import annotations

from xpyrment_sql.errors import XpyrmentError


class StateError(XpyrmentError):
    """A state file cannot be used (not a state file, unreadable, unwritable, or behind the data)."""


class StateMismatchError(StateError):
    """A state file was built from another source, columns, bin size, zone or state format."""


class StateLockedError(StateError):
    """Another run held the state file's lock for longer than the run would wait."""
