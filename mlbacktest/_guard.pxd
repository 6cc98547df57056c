# cython: language_level=3
"""The attribute guard of Strategy (see _guard.pyx)."""

cdef class Guarded:
    """Base of Strategy whose instances refuse assignment to the reserved names (no fields)."""
    pass
