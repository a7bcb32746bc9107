"""The local state a monitor keeps between runs (a file the user names; never the user's database)."""

from xpyrment_sql.state.errors import StateError, StateLockedError, StateMismatchError
from xpyrment_sql.state.store import StateStore

__all__ = ["StateError", "StateLockedError", "StateMismatchError", "StateStore"]
