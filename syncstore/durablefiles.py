"""Writing files so that they survive a crash or a power cut whole or not at all.

One helper for every file the sync layer writes (snapshots in the local store,
downloads, ``working.json``): write a temporary file beside the target, fsync it,
rename it over the target, fsync the folder. A reader sees the old file or the new one,
never half of either, and a rename that returned is on disk.
"""

import os
import uuid
from pathlib import Path


def temp_name(name: str) -> str:
    # "~" is not allowed in snapshot keys, so a leftover temporary file (after a crash)
    # can never be mistaken for a key when a store lists its folder.
    return f".{name}.{uuid.uuid4().hex}~tmp"


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` survive a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(dest: Path, fill) -> None:
    """Write ``dest`` through a temporary file beside it; ``fill(file)`` writes the bytes.

    On any failure the temporary file is removed and ``dest`` is left as it was.
    """
    dest = Path(dest)
    tmp = dest.with_name(temp_name(dest.name))
    try:
        with open(tmp, "xb") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)


def write_bytes_atomically(dest: Path, data: bytes) -> None:
    write_atomically(dest, lambda handle: handle.write(data))
