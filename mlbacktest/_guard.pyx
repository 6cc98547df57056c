"""The attribute guard of :class:`~mlbacktest.Strategy`: names of the API cannot be assigned.

``Guarded.__setattr__`` is the type's C ``tp_setattro``: an ordinary
assignment (``self.step += 1``) costs one set lookup more than
``object.__setattr__`` and no Python-level call, so a strategy that keeps
its state on ``self`` in a per-bar hook is not slowed.
"""

from cpython.object cimport PyObject_GenericSetAttr

# The names refused, and the function writing the message; set once by
# mlbacktest.strategy (through set_reserved) when the Strategy class exists.
cdef frozenset _reserved = frozenset()
cdef object _message = None


def set_reserved(names, message):
    """Refuse assignment to ``names``; ``message(class_name, name)`` explains why.

    Parameters
    ----------
    names : iterable of str
        The reserved attribute names.
    message : callable
        Called as ``message(class_name, name)``; returns the error text.
    """
    global _reserved, _message
    _reserved = frozenset(names)
    _message = message


def reserved():
    """The reserved attribute names (a frozenset)."""
    return _reserved


cdef class Guarded:
    """Base of Strategy whose instances refuse assignment to the reserved names."""

    def __setattr__(self, name, value):
        if name in _reserved:
            raise AttributeError(_message(type(self).__name__, name))
        PyObject_GenericSetAttr(self, name, value)
