"""Pickles that only this user's coopbench wrote: an HMAC checked before anything is unpickled.

Unpickling runs code named in the file, so a pickle read back from a directory that others can
write (a shared `COOPBENCH_CACHE_DIR`) would run their code as this user. Where a third-party
object has no data-only form (overcooked-ai's motion planners), the file carries an HMAC-SHA256
of the pickle under a per-user secret, made on first use in the user's config directory (mode
0600, never in the cache), and `unseal` refuses any file whose tag does not match before
`pickle.loads` sees a byte of it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import secrets
from pathlib import Path
from typing import Any

MAGIC = b"coopbench-signed-pickle-v1\n"
KEY_FILE = "signing.key"
_TAG = hashlib.sha256().digest_size


class ForeignFile(ValueError):
    """A file not sealed by this user's coopbench (planted, foreign, damaged or truncated)."""


def key_path() -> Path:
    """Where the per-user secret lives: the user's config dir, apart from any cache."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("coopbench")) / KEY_FILE


def secret() -> bytes:
    """This user's secret, made (32 random bytes, mode 0600) on first use."""
    path = key_path()
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(32))
    try:
        os.link(tmp, path)  # first writer wins; a racing process reads the winner's key
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()


def owner_id() -> str:
    """A short name for this user's secret (not the secret), to keep users' files apart."""
    return hmac.new(secret(), b"owner", hashlib.sha256).hexdigest()[:8]


def seal(obj: Any) -> bytes:
    """`obj` pickled, behind a header and its HMAC."""
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return MAGIC + hmac.new(secret(), payload, hashlib.sha256).digest() + payload


def unseal(data: bytes) -> Any:
    """The object `seal` made, or `ForeignFile` (before any unpickling) for anything else."""
    if not data.startswith(MAGIC):
        raise ForeignFile("not a file sealed by coopbench")
    tag, payload = data[len(MAGIC):len(MAGIC) + _TAG], data[len(MAGIC) + _TAG:]
    expected = hmac.new(secret(), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(tag, expected):
        raise ForeignFile("its signature does not match this user's key (written by someone "
                          "else, or damaged)")
    return pickle.loads(payload)  # noqa: S301  (authenticated above)
