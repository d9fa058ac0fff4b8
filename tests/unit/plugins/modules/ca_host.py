# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CA host for the module tests: its directory, a snapshot of it, and runs at the same moment."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import stat
import sys

from ansible.module_utils.testing import patch_module_args

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _index
from ansible_collections.fleet.mtls.plugins.module_utils import _x509

# An index entry as sign records it, valid for years.
ENTRY = dict(serial="0A1B", name="web1/server", requester="web1", profile="server", subject="CN=web1",
             subject_alt_names=["DNS:web1"], not_before="2025-01-01T00:00:00Z", not_after="2099-01-01T00:00:00Z",
             fingerprint_sha256="00", issuer="CN=Test Issuing", issued_at="2025-01-01T00:00:00Z", revoked_at=None,
             revocation_reason=None)


def ca_directory(directory, pki, entries=(), lock=True):
    """The issuing CA's certificate, key and index in directory; with lock, the index's lock file too.

    The lock file is there on a CA that has signed or published before; the
    tests of refusals that happen before the lock is taken leave it out, to
    show that it is not even created.
    """
    directory.mkdir(exist_ok=True)
    (directory / "issuing.crt").write_bytes(_x509.certificate_pem(pki.issuing))
    (directory / "issuing.key").write_bytes(c.serialize_private_key(pki.issuing_key))
    (directory / "index.json").write_text(json.dumps({"format": _index.INDEX_FORMAT,
                                                      "certificates": [dict(ENTRY, **e) for e in entries]}))
    if lock:
        (directory / "index.db.lock").write_bytes(b"")
    return dict(ca_cert_path=str(directory / "issuing.crt"), ca_key_path=str(directory / "issuing.key"))


def snapshot(directory):
    """Every entry under directory: a regular file by its sha256, a symbolic link by its target, others by kind."""
    found = {}
    for root, dirs, files in os.walk(str(directory)):
        for name in dirs + files:
            path = os.path.join(root, name)
            relative = os.path.relpath(path, str(directory))
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                found[relative] = "link -> " + os.readlink(path)
            elif stat.S_ISREG(mode):
                with open(path, "rb") as handle:
                    found[relative] = hashlib.sha256(handle.read()).hexdigest()
            else:
                found[relative] = "mode %o" % stat.S_IFMT(mode)  # a directory, a FIFO: never opened
    return found


def refused(run_module, directory, args, *fragments, check_mode=False):
    """Run the module expecting a failure whose message holds every fragment; directory stays byte-identical."""
    before = snapshot(directory)
    result = run_module(args, check_mode=check_mode)
    assert result.get("failed"), result
    for fragment in fragments:
        assert fragment in result["msg"], result["msg"]
    assert snapshot(directory) == before
    return result["msg"]


def _run_in_child(main, args, barrier, result_path):
    barrier.wait()
    sys.stdout = io.StringIO()
    try:
        with patch_module_args(args):
            main()
    except SystemExit:
        pass
    with open(result_path, "w") as handle:
        handle.write(sys.stdout.getvalue())


def run_at_once(main, runs, results_directory, while_running=None):
    """Run main() once per args dict in runs, each in its own process, all released at the same moment.

    while_running(): called once every process waits at the start, and
    returned when all have ended (a watcher to start; it returns a stop
    function). Returns the results in the order of runs.
    """
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(runs) + 1)
    results_directory.mkdir()
    paths = [str(results_directory / ("%02d.json" % number)) for number in range(len(runs))]
    processes = [context.Process(target=_run_in_child, args=(main, args, barrier, path))
                 for args, path in zip(runs, paths)]
    for process in processes:
        process.start()
    stop = while_running() if while_running is not None else None
    try:
        barrier.wait(timeout=60)
        for process in processes:
            process.join(timeout=120)
    finally:
        if stop is not None:
            stop()
        for process in processes:
            if process.is_alive():
                process.kill()
    assert [p.exitcode for p in processes] == [0] * len(runs)
    results = []
    for path in paths:
        with open(path) as handle:
            results.append(json.loads(handle.read()))
    return results
