# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way the collection writes a file: whole, atomically, or not at all.

A temporary file in the destination's directory gets its final mode and
owner before any byte is written (a key is never readable by others, not
even for a moment), is flushed to disk, and then renamed over the old file.
A reader sees the old content or the new, never a mix; a failure leaves the
old file byte-identical.

Writers that read, decide and write (the CA's index and CRL) do so holding
an exclusive lock (exclusive_lock), so that two runs never decide from the
same old content.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import grp
import os
import pwd
import stat
import tempfile

from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError


def read_bytes(path):
    """The file's content, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except IOError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise PkiError("cannot read %s: %s" % (path, exc.strerror))


def read_required(path, what):
    """The file's content; a missing file is an error that says what it is."""
    data = read_bytes(path)
    if data is None:
        raise PkiError("%s %s does not exist" % (what, path))
    return data


def resolve_owner(owner):
    if owner is None or owner == "":
        return -1
    try:
        return int(owner)
    except ValueError:
        pass
    try:
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise PkiError("user %r does not exist" % owner)


def resolve_group(group):
    if group is None or group == "":
        return -1
    try:
        return int(group)
    except ValueError:
        pass
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise PkiError("group %r does not exist" % group)


def check_writable(path):
    """Refuse early, before anything is written, a destination we cannot replace."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise PkiError("cannot write %s: directory %s does not exist" % (path, directory))
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PkiError("cannot write %s: directory %s is not writable" % (path, directory))
    if os.path.isdir(path):
        raise PkiError("cannot write %s: it is a directory" % path)


def atomic_write(path, content, mode=0o644, owner=None, group=None):
    """Replace path with content; mode and owner are set before the rename."""
    check_writable(path)
    uid, gid = resolve_owner(owner), resolve_group(group)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        try:
            os.fchmod(fd, mode)
            if uid != -1 or gid != -1:
                os.fchown(fd, uid, gid)
            view = memoryview(content)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp_path, path)
    except OSError as exc:
        try:
            os.unlink(tmp_path)
        except OSError:
            pass
        raise PkiError("cannot write %s: %s" % (path, exc.strerror or exc))
    fsync_directory(directory)


def fsync_directory(directory):
    # The rename is durable only once the directory entry is on disk.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove(path):
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise PkiError("cannot remove %s: %s" % (path, exc.strerror))
        return False
    return True


@contextlib.contextmanager
def exclusive_lock(path):
    """Hold an exclusive flock on path, a regular file made (mode 0600) when missing.

    The lock file is never reached through a symbolic link (which would
    create or lock a file elsewhere) and must be a regular file; anything else
    is refused naming the path. O_NONBLOCK only keeps the open of a FIFO from
    waiting for a reader; flock still waits for the lock. Closing the file
    releases the lock, also when the block raises.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PkiError("lock file %s is a symbolic link; it must be a regular file" % path)
        if exc.errno == errno.EISDIR:
            raise PkiError("lock file %s is a directory; it must be a regular file" % path)
        if exc.errno == errno.ENXIO:  # a FIFO without a reader, a socket
            raise PkiError("lock file %s is not a regular file" % path)
        raise PkiError("cannot open lock file %s: %s" % (path, exc.strerror or exc))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PkiError("lock file %s is not a regular file" % path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            raise PkiError("cannot lock %s: %s" % (path, exc.strerror or exc))
        yield
    finally:
        os.close(fd)
