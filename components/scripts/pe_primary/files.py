"""Files on the primary: read as UTF-8, changed under a lock, replaced atomically.

PE's own files (pg_ident.conf) and pe-lb's records are changed by many joins and
leaves at once. Each change takes an exclusive lock on a lock file beside the file,
reads the current text, writes the new text to a temporary file in the same directory
(fsync), gives it the original's owner, mode and SELinux context, and renames it over
the original: a reader sees the old file or the new one, never a torn one, and no
writer's line is lost.
"""

import contextlib
import errno
import fcntl
import json
import os
import tempfile
from typing import Any, Callable, Dict, Iterator, Optional

ENCODING = "utf-8"
_SELINUX_ATTRIBUTE = "security.selinux"


def read_text(path: str) -> str:
    with open(path, encoding=ENCODING) as source:
        return source.read()


@contextlib.contextmanager
def locked(path: str) -> Iterator[None]:
    """An exclusive lock for changing ``path`` (held on ``path``.lock, which is never replaced)."""
    with open(path + ".lock", "a", encoding=ENCODING) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def update_text(path: str, change: Callable[[str], str], default: Optional[str] = None) -> bool:
    """Apply ``change`` to the file's text under its lock; True if the text changed.

    ``default`` is the text of a missing file (None: a missing file is an error).
    """
    with locked(path):
        try:
            before = read_text(path)
        except FileNotFoundError:
            if default is None:
                raise
            before = default
        after = change(before)
        if after == before:
            return False
        replace(path, after)
        return True


def replace(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically, keeping owner, mode and SELinux context. Hold its lock."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        with open(handle, "w", encoding=ENCODING) as target:
            target.write(text)
            target.flush()
            os.fsync(target.fileno())
        _copy_ownership(path, temporary)
        os.rename(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def _copy_ownership(original: str, temporary: str) -> None:
    try:
        status = os.stat(original)
    except FileNotFoundError:
        os.chmod(temporary, 0o644)
        return
    os.chmod(temporary, status.st_mode & 0o7777)
    if (status.st_uid, status.st_gid) != (os.getuid(), os.getgid()):
        os.chown(temporary, status.st_uid, status.st_gid)
    try:
        context = os.getxattr(original, _SELINUX_ATTRIBUTE)
    except OSError as error:
        if error.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            return  # no SELinux label on this file system or file
        raise
    os.setxattr(temporary, _SELINUX_ATTRIBUTE, context)


def _fsync_directory(directory: str) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def load_json(path: str) -> Dict[str, Any]:
    """A JSON object kept by pe-lb ({} when missing or unreadable)."""
    try:
        return dict(json.loads(read_text(path)))
    except (OSError, ValueError, TypeError):
        return {}


def update_json(path: str, change: Callable[[Dict[str, Any]], Dict[str, Any]]) -> Dict[str, Any]:
    """Apply ``change`` to a JSON object file under its lock; the object as written."""
    result: Dict[str, Any] = {}

    def apply(text: str) -> str:
        try:
            current = dict(json.loads(text)) if text.strip() else {}
        except (ValueError, TypeError):
            current = {}
        result.update(change(current))
        return json.dumps(result, sort_keys=True) + "\n"

    update_text(path, apply, default="")
    return result
