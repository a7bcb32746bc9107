"""The local state a monitor keeps between runs (a file the user names; never the user's database)."""

from xpyrment_sql.state.store import StateError, StateLockedError, StateMismatchError, StateStore

__all__ = ["StateError", "StateLockedError", "StateMismatchError", "StateStore"]
