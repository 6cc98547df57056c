"""API credentials of a venue: read from the environment or a private file, never shown.

The values never appear in a repr, a log line, an error message or a file
mlbacktest writes. A credentials file must be readable by its owner only
(``chmod 600``): a file group or other users may read is refused.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Credentials", "CredentialsError", "load_credentials"]

#: Environment variables read by default (the names Alpaca's own tools use).
KEY_ENV = "APCA_API_KEY_ID"
SECRET_ENV = "APCA_API_SECRET_KEY"


class CredentialsError(Exception):
    """Credentials are missing, or their file is unsafe or unreadable."""


@dataclass(frozen=True)
class Credentials:
    """A key id and its secret. ``repr`` and ``str`` show neither.

    Attributes
    ----------
    key_id : str
        The API key id.
    secret_key : str
        The secret.
    source : str
        Where they were read from (``"environment"`` or the file's path).
    """

    key_id: str = field(repr=False)
    secret_key: str = field(repr=False)
    source: str = ""

    def __repr__(self) -> str:
        return f"Credentials(key_id=***, secret_key=***, source={self.source!r})"

    __str__ = __repr__


def _check_private(path: Path) -> None:
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise CredentialsError(f"credentials file {str(path)!r} is not a regular file")
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(
            f"credentials file {str(path)!r} has mode {stat.S_IMODE(st.st_mode):04o}: group or "
            "other users may read or change it; make it private with "
            f"'chmod 600 {path}' and try again")


def _parse(text: str, path: Path) -> dict[str, str]:
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            # the message names the line only, never the content
            raise CredentialsError(f"credentials file {str(path)!r} is not valid JSON (line "
                                   f"{exc.lineno})") from None
        if not isinstance(data, dict):
            raise CredentialsError(f"credentials file {str(path)!r} must hold a JSON object")
        return {str(k): str(v) for k, v in data.items()}
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise CredentialsError(f"credentials file {str(path)!r} line {n} is not NAME=VALUE")
        out[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return out


def load_credentials(
    file: str | os.PathLike[str] | None = None,
    *,
    key_name: str = KEY_ENV,
    secret_name: str = SECRET_ENV,
    env: Mapping[str, str] | None = None,
) -> Credentials:
    """Read a key id and secret from a private file or from the environment.

    Parameters
    ----------
    file : str or path-like, optional
        A file readable by its owner only, holding ``NAME=VALUE`` lines (as
        a shell ``.env`` file) or a JSON object, with the names `key_name`
        and `secret_name`. Without it, the environment is read.
    key_name, secret_name : str
        The names of the two values.
    env : mapping, optional
        The environment (default :data:`os.environ`).

    Raises
    ------
    CredentialsError
        The file is readable or writable by group or others, is not a
        regular file, cannot be parsed, or a value is missing or empty.
    """
    if file is not None:
        path = Path(file)
        if not path.exists():
            raise CredentialsError(f"credentials file {str(path)!r} does not exist")
        _check_private(path)
        try:
            values = _parse(path.read_text(encoding="utf-8"), path)
        except (OSError, UnicodeDecodeError) as exc:
            raise CredentialsError(f"cannot read credentials file {str(path)!r}: "
                                   f"{type(exc).__name__}") from None
        source = str(path)
    else:
        values = dict(os.environ if env is None else env)
        source = "environment"
    missing = [n for n in (key_name, secret_name) if not values.get(n)]
    if missing:
        where = f"file {source!r}" if file is not None else "the environment"
        raise CredentialsError(f"{' and '.join(missing)} not set in {where}")
    return Credentials(values[key_name], values[secret_name], source)
