"""Files and directories that only their owner may open: the event store, its views database and
the webhook signing key hold every organization's billing history and the key to its alerts.

Why explicit modes: `mkdir` and SQLite create with 0777/0644 minus the process umask, so under the
usual umask 0o022 the store was world-readable. Here a directory we create is 0700 and a file we
create 0600 whatever the umask (chmod after creating). SQLite gives the `-wal`, `-shm` and
`-journal` files it makes beside a database the database file's own mode, so they are 0600 too;
the 0700 directory guards them as well.

A directory that already exists is not ours to change (it may be the user's home), unless the
caller says it is ours (the default data directory, which only commcredits uses).
"""

import os
from pathlib import Path

PRIVATE_DIRECTORY_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_directory(path: Path, *, ours: bool = False) -> None:
    """Create `path` and its missing parents with mode 0700; an existing `path` is set to 0700 only
    when `ours`. Raises OSError when it cannot."""
    missing = _missing_directories(path)
    for directory in missing:
        try:
            directory.mkdir(mode=PRIVATE_DIRECTORY_MODE)
        except FileExistsError:  # another process made it meanwhile: it has the same reasons as we do
            continue
        os.chmod(directory, PRIVATE_DIRECTORY_MODE)
    if ours and not missing and path.stat().st_mode & 0o777 != PRIVATE_DIRECTORY_MODE:
        os.chmod(path, PRIVATE_DIRECTORY_MODE)


def create_private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 unless it exists (an empty file is an empty SQLite
    database); an existing file is left as it is. Raises OSError when it cannot."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(descriptor, PRIVATE_FILE_MODE)
    finally:
        os.close(descriptor)


def _missing_directories(path: Path) -> list[Path]:
    """`path` and those of its parents that do not exist, outermost first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing[::-1]
