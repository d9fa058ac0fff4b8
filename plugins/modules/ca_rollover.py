#!/usr/bin/python
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ca_rollover
short_description: The CA host's side of an issuing-CA rollover - its phase, the switch and the retirement
version_added: 0.1.0
description:
  - Keeps the phase of an issuing-CA rollover in C(rollover.json) in O(dir), the CA's directory, so that a rollover
    that stopped continues where it stopped, and moves the CA's files at the two phases that change which CA signs.
    The playbook C(fleet.mtls.ca_rollover) runs it after it has proven each phase.
  - The phases, in order - V(prepared) (the next issuing CA is in C(next/) - its key, its certificate from the root,
    its CRL), V(trusted) (every host's CRL file covers both CAs), V(switched), V(reissued) (no certificate of the
    old CA is in use), V(retired) and V(done) (the fleet refuses the old CA).
  - V(switched) moves the current issuing CA's files (C(issuing.key), C(issuing.crt), C(issuing.crl), the record
    C(index.db) with its WAL files) to C(previous/), and those of C(next/) in their place, so that every run signs
    with the new CA from then on. It holds the CA's locks (C(index.db.lock), C(issuing.key.lock)) throughout, so no
    sign, CRL or CA run sees the files half moved, and each file's move is one rename, so that a run stopped
    half-way is finished by the next one.
  - V(retired) moves C(previous/) to C(retired/<serial of the old CA>/) and removes the old CA's key; its
    certificate, last CRL and record stay there. V(done) moves C(rollover.json) there too; the next rollover starts
    afresh.
  - A phase already reached changes nothing. A phase further than the next one, or one whose files are not as it
    needs, fails the task naming what is missing, with nothing written.
  - Without O(phase), it only reads, returning the rollover's phase (null when none runs).
author:
  - fleet.mtls maintainers (@fleet-mtls)
extends_documentation_fragment:
  - fleet.mtls.attributes.WRITES
  - fleet.mtls.attributes.CRYPTOGRAPHY
options:
  dir:
    description: The CA's directory on the CA host (C(mtls_ca_dir)), holding C(issuing.crt) and C(issuing.key).
    type: path
    required: true
  phase:
    description: The phase to record as reached. Unset, nothing is written.
    type: str
    choices: [prepared, trusted, switched, reissued, retired, done]
seealso:
  - module: fleet.mtls.ca
  - module: fleet.mtls.crl
"""

EXAMPLES = r"""
- name: Where the rollover stands
  fleet.mtls.ca_rollover:
    dir: /etc/fleet-mtls/ca
  register: rollover

- name: Sign with the new issuing CA from now on
  fleet.mtls.ca_rollover:
    dir: /etc/fleet-mtls/ca
    phase: switched
  when: rollover.phase == 'trusted'
"""

RETURN = r"""
phase:
  description: The last phase reached, or null when no rollover runs (none started, or the last one done before this
    run).
  returned: success
  type: str
  sample: switched
next_phase:
  description: The phase that comes next (V(prepared) when no rollover runs), or null after V(done).
  returned: success
  type: str
  sample: reissued
phases:
  description: When each phase was reached (ISO 8601, UTC).
  returned: success
  type: dict
  sample: {prepared: "2026-12-07T16:00:00Z", trusted: "2026-12-07T16:02:00Z"}
old_serial:
  description: Serial of the issuing CA being replaced (upper-case hex), or null when no rollover runs.
  returned: success
  type: str
new_serial:
  description: Serial of the issuing CA that replaces it, or null when no rollover runs.
  returned: success
  type: str
moved:
  description: The files moved (or, in check mode, to be moved) by this run, as C(source -> destination).
  returned: success
  type: list
  elements: str
"""

import contextlib
import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _files
from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils import _params
from ansible_collections.fleet.mtls.plugins.module_utils import _time
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

PHASES = ("prepared", "trusted", "switched", "reissued", "retired", "done")
STATE_NAME = "rollover.json"
# One issuing CA's files, in the order they move: the key last among the pair
# a signer reads, the record after its WAL files.
CA_FILES = ("issuing.crt", "issuing.key", "issuing.crl", "index.db-wal", "index.db-shm", "index.db")
LOCKS = ("index.db.lock", "issuing.key.lock")


def read_state(directory):
    data = _files.read_bytes(os.path.join(directory, STATE_NAME))
    if data is None:
        return None
    try:
        state = json.loads(data.decode("utf-8"))
    except ValueError:
        raise PkiError("%s is not a rollover state: remove it only if no rollover runs" % os.path.join(directory, STATE_NAME))
    if not isinstance(state, dict) or state.get("phase") not in PHASES or not isinstance(state.get("phases"), dict):
        raise PkiError("%s is not a rollover state: remove it only if no rollover runs" % os.path.join(directory, STATE_NAME))
    return state


def serial_of(path):
    data = _files.read_required(path, "CA certificate")
    return c.serial_hex(_x509.load_certificates(data, source="CA certificate %s" % path)[0].serial_number)


def plan_moves(directory, phase, state):
    """[(source, destination)] still to be made to reach phase; a move already made is left out."""
    if phase == "switched":
        moves = []
        for name in CA_FILES:
            top, previous, following = (os.path.join(directory, name), os.path.join(directory, "previous", name),
                                        os.path.join(directory, "next", name))
            if os.path.lexists(following) and not os.path.lexists(previous) and os.path.lexists(top):
                moves.append((top, previous))
            if os.path.lexists(following):
                moves.append((following, top))
        return moves
    if phase == "retired":
        previous = os.path.join(directory, "previous")
        if os.path.lexists(previous):
            return [(previous, os.path.join(directory, "retired", state["old_serial"]))]
    if phase == "done":
        return [(os.path.join(directory, STATE_NAME), os.path.join(directory, "retired", state["old_serial"], STATE_NAME))]
    return []


def check_phase(directory, phase, state):
    """Refuse, before anything is written, a phase out of order or files not as it needs."""
    reached = PHASES.index(state["phase"]) if state else -1
    wanted = PHASES.index(phase)
    if wanted > reached + 1:
        raise PkiError("cannot record phase %s: the rollover has reached %s, and %s comes next"
                       % (phase, state["phase"] if state else "no phase", PHASES[reached + 1]))
    if phase == "prepared":
        for name in ("issuing.crt", "issuing.key"):
            if not os.path.isfile(os.path.join(directory, "next", name)):
                raise PkiError("cannot start a rollover: %s is missing (role ca makes the next issuing CA first)"
                               % os.path.join(directory, "next", name))
    if phase == "switched":
        for name in ("issuing.crt", "issuing.key"):
            if not (os.path.isfile(os.path.join(directory, "next", name))
                    or os.path.isfile(os.path.join(directory, "previous", name))):
                raise PkiError("cannot switch: neither next/%s nor previous/%s is in %s" % (name, name, directory))
    if phase == "retired":
        target = os.path.join(directory, "retired", state["old_serial"])
        if os.path.lexists(os.path.join(directory, "previous")) and os.path.lexists(target):
            raise PkiError("cannot retire: both previous/ and %s are there; one must go by hand" % target)


@contextlib.contextmanager
def ca_locks(directory, check_mode):
    """The CA's locks, the record's and the key's, held while files move."""
    if check_mode:
        yield
        return
    with _files.exclusive_lock(os.path.join(directory, LOCKS[0])):
        with _files.exclusive_lock(os.path.join(directory, LOCKS[1])):
            yield


def move(source, destination):
    parent = os.path.dirname(destination)
    try:
        if not os.path.isdir(parent):
            os.makedirs(parent, 0o700)
        os.rename(source, destination)
    except OSError as exc:
        raise PkiError("cannot move %s to %s: %s" % (source, destination, exc.strerror or exc))
    _files.fsync_directory(os.path.dirname(source))
    _files.fsync_directory(parent)


def tidy_next(directory):
    """Remove next/ once the switch has emptied it of all but its lock files."""
    following = os.path.join(directory, "next")
    if not os.path.isdir(following) or os.path.islink(following):
        return
    names = os.listdir(following)
    if any(not name.endswith(".lock") for name in names):
        return
    for name in names:
        _files.remove(os.path.join(following, name))
    try:
        os.rmdir(following)
    except OSError:
        pass


def summary(state, moved, changed, before, after):
    phase = state["phase"] if state else None
    if not state:
        following = "prepared"
    else:
        following = PHASES[PHASES.index(phase) + 1] if phase != "done" else None
    return dict(changed=changed, phase=phase, next_phase=following, phases=state["phases"] if state else {},
                old_serial=state.get("old_serial") if state else None,
                new_serial=state.get("new_serial") if state else None,
                moved=["%s -> %s" % pair for pair in moved], diff=dict(before=before, after=after))


def run(module):
    directory, phase = module.params["dir"], module.params["phase"]
    if not os.path.isdir(directory):
        raise PkiError("the CA directory %s does not exist" % directory)
    with ca_locks(directory, module.check_mode or phase is None):
        state = read_state(directory)
        if state and state["phase"] == "done":
            # A run stopped between recording done and moving the record: finish it.
            if phase is None or module.check_mode:
                return summary(None, [], phase is not None, dict(phase="done"), dict(phase=None))
            for source, destination in plan_moves(directory, "done", state):
                move(source, destination)
            state = None
        before = dict(phase=state["phase"] if state else None)
        if phase is None or (state and PHASES.index(phase) <= PHASES.index(state["phase"])):
            return summary(state, [], False, before, before)
        check_phase(directory, phase, state)
        if phase == "prepared":
            state = dict(phase=None, phases={}, old_serial=serial_of(os.path.join(directory, "issuing.crt")),
                         new_serial=serial_of(os.path.join(directory, "next", "issuing.crt")))
            if state["old_serial"] == state["new_serial"]:
                raise PkiError("next/issuing.crt is the current issuing CA: nothing to roll over to")
        moves = plan_moves(directory, phase, state)
        state = dict(state, phase=phase, phases=dict(state["phases"], **{phase: _time.isoformat(_time.utcnow())}))
        if module.check_mode:
            return summary(state, moves, True, before, dict(phase=phase))
        content = (json.dumps(state, indent=2, sort_keys=True) + "\n").encode("utf-8")
        if phase == "done":
            # The record of the rollover goes with the old CA's files.
            _files.atomic_write(os.path.join(directory, STATE_NAME), content, 0o600)
        for source, destination in moves:
            move(source, destination)
        if phase == "switched":
            tidy_next(directory)
        if phase == "retired":
            _files.remove(os.path.join(directory, "retired", state["old_serial"], "issuing.key"))
        if phase != "done":
            _files.atomic_write(os.path.join(directory, STATE_NAME), content, 0o600)
        return summary(state, moves, True, before, dict(phase=phase))


def main():
    module = AnsibleModule(
        argument_spec=_params.argument_spec(
            [],
            dir=dict(type="path", required=True),
            phase=dict(type="str", choices=list(PHASES)),
        ),
        supports_check_mode=True,
    )
    _module.run(module, run)


if __name__ == "__main__":
    main()
