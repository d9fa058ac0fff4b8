# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The thin layer between AnsibleModule and the PKI core.

The file a module manages (check mode, diff, owner/group/mode), and the
runner that turns a PkiError into a clean failure. The shared option groups
are in _params, which needs nothing but the standard library.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _files
from ansible_collections.fleet.mtls.plugins.module_utils import _params
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

SECRET_PLACEHOLDER = "<private key: not shown>\n"

# ManagedFile's owner and group when none are given: the module's own options.
FROM_PARAMS = object()


def parse_mode(value, default):
    """File modes as octal: '0640', '640' or an int written in octal (0o640)."""
    if value is None:
        return default
    if isinstance(value, int):
        return value
    text = str(value).strip()
    try:
        mode = int(text, 8)
    except ValueError:
        raise PkiError("mode %r must be octal, e.g. '0640' (quote it in YAML)" % (value,))
    if mode > 0o7777:
        raise PkiError("mode %r is out of range" % (value,))
    return mode


class ManagedFile(object):
    """One file a module owns: compare, write atomically, report diff.

    In check mode nothing is written but changed and diff tell what would be.
    check_mode is the module's unless given: Files.read_only() passes True
    for a decision that must write nothing, and the module's own check_mode
    stays as it is.
    A secret file never shows its content in a diff, and is never reached
    through a symbolic link: its mode and owner are what keep the key, and a
    link would have them checked on one file and the key read from another.
    """

    def __init__(self, module, path, mode, secret=False, owner=FROM_PARAMS, group=FROM_PARAMS, check_mode=None):
        self.module = module
        self.check_mode = module.check_mode if check_mode is None else bool(check_mode)
        self.path = path
        self.mode = mode
        self.owner = module.params.get("owner") if owner is FROM_PARAMS else owner
        self.group = module.params.get("group") if group is FROM_PARAMS else group
        self.secret = secret
        self._current = None
        self._read = False

    def _refuse_link(self):
        if self.secret and os.path.islink(self.path):
            raise PkiError("%s is a symbolic link; a file that holds a private key must be a regular file in the "
                           "configured directory (point the directory at the real location instead)" % self.path)

    @property
    def current(self):
        if not self._read:
            self._refuse_link()
            self._current = _files.read_bytes(self.path)
            self._read = True
        return self._current

    @property
    def exists(self):
        return self.current is not None

    def check_writable(self):
        self._refuse_link()
        if self.check_mode and not os.path.lexists(os.path.dirname(os.path.abspath(self.path))):
            return  # a directory an earlier task makes, which check mode did not run: the file would be written
        _files.check_writable(self.path)

    def _diff_text(self, content):
        if content is None:
            return ""
        return SECRET_PLACEHOLDER if self.secret else to_text(content)

    def replace(self, content, diffs):
        """Write content unless it is already there; True when it changed (or would)."""
        if self.current == content:
            return False
        if self.module._diff:
            diffs.append(dict(before_header=self.path, after_header=self.path,
                              before=self._diff_text(self.current), after=self._diff_text(content)))
        if not self.check_mode:
            _files.atomic_write(self.path, content, mode=self.mode, owner=self.owner, group=self.group)
            self._current = content
        return True

    def remove(self, diffs):
        if not self.exists:
            return False
        if self.module._diff:
            diffs.append(dict(before_header=self.path, after_header=self.path,
                              before=self._diff_text(self.current), after=""))
        if not self.check_mode:
            _files.remove(self.path)
        return True

    def ensure_attributes(self, changed):
        """Owner, group and mode of a file whose content is already right."""
        self._refuse_link()
        if self.check_mode and not self.exists:
            return changed
        if self.module.check_mode and missing_accounts(self.owner, self.group):
            # An account an earlier task makes (the certificate role makes a key's group), which check mode did
            # not run: the real run sets it.
            return True
        if self.check_mode and not self.module.check_mode:
            return attributes_differ(self.path, self.mode, self.owner, self.group) or changed
        file_args = self.module.load_file_common_arguments(
            dict(mode="0%o" % self.mode, owner=self.owner, group=self.group), path=self.path)
        return self.module.set_fs_attributes_if_different(file_args, changed)


class Files(object):
    """What the core's installers (_install, _request) need of a module run, without the module itself.

    Whether the run writes (check mode: the module's, unless given), and the
    files it manages (ManagedFile: atomic writes, diffs when the run asks for
    them, owner, group and mode set as Ansible sets them). A module makes one
    and hands it over with its parameters; read_only() is the same run's
    files looked at only, for a decision that must write nothing whatever the
    run's check mode (certificate_request's second look after an install).
    """

    def __init__(self, module, check_mode=None):
        self._module = module
        self.check_mode = module.check_mode if check_mode is None else bool(check_mode)

    def read_only(self):
        return Files(self._module, check_mode=True)

    def managed(self, path, mode, secret=False, owner=None, group=None):
        """The file at path, managed with this run's check mode."""
        return ManagedFile(self._module, path, mode, secret=secret, owner=owner, group=group,
                           check_mode=self.check_mode)


def attributes_differ(path, mode, owner=None, group=None):
    """Whether path's mode, owner or group (a name or a number; None: any) differ from these, changing nothing:
    what set_fs_attributes_if_different reports in check mode, for a ManagedFile in check mode of its own."""
    st = os.lstat(path)
    if stat.S_IMODE(st.st_mode) != mode:
        return True
    for what, wanted, actual, lookup in (("owner", owner, st.st_uid, lambda name: pwd.getpwnam(name).pw_uid),
                                         ("group", group, st.st_gid, lambda name: grp.getgrnam(name).gr_gid)):
        if wanted is not None and _numeric_id(what, wanted, lookup) != actual:
            return True
    return False


def missing_accounts(owner=None, group=None):
    """The owner and group given by name (None: any) that this host does not have."""
    missing = []
    for value, lookup in ((owner, pwd.getpwnam), (group, grp.getgrnam)):
        if value is not None and not str(value).isdigit():
            try:
                lookup(str(value))
            except KeyError:
                missing.append(value)
    return missing


def _numeric_id(what, value, lookup):
    """The number of an owner or group given by name or number."""
    value = str(value)
    if value.isdigit():
        return int(value)
    try:
        return lookup(value)
    except KeyError:
        raise PkiError("%s %s does not exist" % (what, value))


def load_private_key_from_params(module):
    """The key named by the private_key_source group (path or content)."""
    path = module.params.get("privatekey_path")
    content = module.params.get("privatekey_content")
    passphrase = module.params.get("privatekey_passphrase")
    if content is not None:
        return c.load_private_key(content, passphrase, source="privatekey_content")
    data = _files.read_bytes(path)
    if data is None:
        raise PkiError("private key %s does not exist" % path)
    return c.load_private_key(data, passphrase, source="private key %s" % path)


def load_ca_signer(params, now):
    """The signing CA of the ca_signer group: certificate and key, checked usable."""
    ca_cert = _x509.load_certificate(_files.read_required(params["ca_cert_path"], "CA certificate"),
                                     source="CA certificate %s" % params["ca_cert_path"])
    ca_key = c.load_private_key(_files.read_required(params["ca_key_path"], "CA key"),
                                params["ca_key_passphrase"], source="CA key %s" % params["ca_key_path"])
    _x509.require_usable_ca(ca_cert, ca_key, source="CA certificate %s" % params["ca_cert_path"], now=now)
    return ca_cert, ca_key


def _version_tuple(text):
    parts = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def require_cryptography(module):
    """Fail the module unless cryptography is importable and at least MINIMUM_CRYPTOGRAPHY_VERSION."""
    if not c.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography >= %s" % c.MINIMUM_CRYPTOGRAPHY_VERSION),
                         exception=c.CRYPTOGRAPHY_IMPORT_ERROR)
    if _version_tuple(c.CRYPTOGRAPHY_VERSION) < _version_tuple(c.MINIMUM_CRYPTOGRAPHY_VERSION):
        module.fail_json(msg="cryptography %s is too old: fleet.mtls needs %s or newer"
                         % (c.CRYPTOGRAPHY_VERSION, c.MINIMUM_CRYPTOGRAPHY_VERSION))


def run(module, body, needs_cryptography=True):
    """Run body(module) -> result dict; every PkiError becomes fail_json.

    First of all, a private key in an option that is logged is refused, masked.
    Then cryptography is required (present and recent enough), unless the
    module reads no key, request or certificate (needs_cryptography=False).
    """
    _params.refuse_private_keys(module)
    if needs_cryptography:
        require_cryptography(module)
    try:
        result = body(module)
    except PkiError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)
