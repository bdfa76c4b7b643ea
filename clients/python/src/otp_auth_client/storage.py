"""Where the client keeps its tokens. Implement :class:`TokenStorage` to persist them elsewhere."""

import threading
from typing import Optional, Protocol, runtime_checkable

from .models import Tokens

__all__ = ["TokenStorage", "MemoryTokenStorage"]


@runtime_checkable
class TokenStorage(Protocol):
    """Keeps one session's tokens.

    The client calls ``save`` after every sign-in and refresh (refresh tokens rotate: the previous
    one is dead once ``save`` is called), ``clear`` on logout and when a refresh is refused, and
    ``load`` before every authenticated call. Calls may come from several threads; the client
    serialises ``save``/``clear`` among themselves but not against ``load``, so each method must
    be safe to call concurrently (an atomic file replace, a database row, a lock).
    Refresh tokens are long-lived bearer credentials: store them where only this process's user
    can read them.
    """

    def load(self) -> Optional[Tokens]:
        """The current tokens, or ``None`` when signed out."""
        ...

    def save(self, tokens: Tokens) -> None:
        """Replace the stored tokens."""
        ...

    def clear(self) -> None:
        """Forget the tokens."""
        ...


class MemoryTokenStorage:
    """The default: tokens in this process's memory only, gone when it exits."""

    def __init__(self, tokens: Optional[Tokens] = None) -> None:
        self._lock = threading.Lock()
        self._tokens = tokens

    def load(self) -> Optional[Tokens]:
        with self._lock:
            return self._tokens

    def save(self, tokens: Tokens) -> None:
        with self._lock:
            self._tokens = tokens

    def clear(self) -> None:
        with self._lock:
            self._tokens = None

    def __repr__(self) -> str:
        return "MemoryTokenStorage(signed_in=%s)" % (self.load() is not None)
