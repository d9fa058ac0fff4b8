# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A module's parameters, with the standard library only: the shared option groups and the checks that come first.

The option groups are documented once each, in the doc fragment of the same
name in plugins/doc_fragments; argument_spec() puts a module's spec together,
suboptions() the options of a list or dict option (whose documentation stays
in the module: a doc fragment cannot add suboptions). A group that decides
more than its options' types has its check here too: new_key_size() for
key_spec.

A private key belongs in an option declared ``no_log`` (privatekey_content,
the passphrases); every other option is printed back in the task's
``invocation`` at ``-vvv``. A key pasted into such an option (a combined PEM
given as a certificate, say) is refused here, and its value is masked first,
so the failure itself does not show it. This runs before a module reads its
memo, so that even a remembered answer never echoes a key.
"""

from __future__ import annotations

import copy
import re

from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

# Every PEM private key label: PRIVATE KEY, RSA/EC/DSA/ENCRYPTED/OPENSSH PRIVATE KEY.
PRIVATE_KEY_BLOCK = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")


def _walk(spec, value, name, found):
    """Collect (option name, string) for each string under an option that is not no_log and holds a key."""
    if isinstance(value, str):
        if PRIVATE_KEY_BLOCK.search(value):
            found.append((name, value))
    elif isinstance(value, dict):
        for key, item in value.items():
            option = (spec or {}).get(key, {})
            if not option.get("no_log"):
                _walk(option.get("options"), item, "%s.%s" % (name, key) if name else key, found)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _walk(spec, item, "%s[%d]" % (name, index), found)


def private_keys_in(argument_spec, params):
    """[(option name, value)] of every logged option value that holds a private key."""
    found = []
    _walk(argument_spec, params, "", found)
    return found


def refuse_private_keys(module):
    """Fail, with the offending values masked, when an option that is logged holds a private key."""
    found = private_keys_in(module.argument_spec, module.params)
    if not found:
        return
    for _name, value in found:
        module.no_log_values.add(value)
    names = sorted(set(name for name, _value in found))
    module.fail_json(msg="%s hold%s a private key. A key is never passed in an option that is logged: give the "
                         "certificates alone (a combined PEM holds the key too), and the key only in an option made "
                         "for it, such as privatekey_path or privatekey_content"
                         % (", ".join(names), "s" if len(names) == 1 else ""))


# The keys the collection makes: each type with the sizes it takes (bits; for EC the curve's size; none for
# Ed25519), and the size a new key of the type gets when none is asked. The key_spec group offers these types,
# new_key_size() holds a size to them, and _crypto makes exactly these keys.
KEY_SIZES = {
    "ec": (256, 384),
    "rsa": (2048, 3072, 4096),
    "ed25519": (None,),
}
DEFAULT_KEY_SIZE = {"ec": 256, "rsa": 3072, "ed25519": None}

# The choices several modules offer, named once (the modules' DOCUMENTATION lists them too, and sanity checks
# that each matches its module's argument_spec). KEY_SIZES and _policy.PROFILES hold what each one means.
KEY_TYPES = tuple(KEY_SIZES)
PROFILES = ("server", "client", "server_client")

# Each group matches the doc fragment of the same name.
OPTION_GROUPS = {
    # fleet.mtls.file_attributes
    "file_attributes": dict(
        owner=dict(type="str"),
        group=dict(type="str"),
        mode=dict(type="raw"),
    ),
    # fleet.mtls.private_key_source
    "private_key_source": dict(
        privatekey_path=dict(type="path"),
        privatekey_content=dict(type="str", no_log=True),
        privatekey_passphrase=dict(type="str", no_log=True),
    ),
    # fleet.mtls.ca_signer
    "ca_signer": dict(
        ca_cert_path=dict(type="path", required=True),
        ca_key_path=dict(type="path", required=True),
        ca_key_passphrase=dict(type="str", no_log=True),
    ),
    # fleet.mtls.renewal
    "renewal": dict(
        renew_fraction=dict(type="float"),
        renew_days_before=dict(type="float"),
        renew_jitter=dict(type="float", default=0.0),
    ),
    # fleet.mtls.key_spec; the sizes are checked by new_key_size()
    "key_spec": dict(
        key_type=dict(type="str", choices=list(KEY_TYPES), default="ec"),
        key_size=dict(type="int"),
    ),
}


def _compose(groups, own):
    """The named groups' options and a module's own. An own option of a group's name adds to the group's
    definition (aliases, say), as the module's DOCUMENTATION adds to the doc fragment's; it never replaces it."""
    spec = {}
    for group in groups:
        spec.update(copy.deepcopy(OPTION_GROUPS[group]))
    for name, option in own.items():
        spec[name] = dict(spec[name], **option) if name in spec else option
    return spec


def argument_spec(groups, **module_options):
    """The module's argument_spec: the named shared groups plus its own options."""
    return _compose(groups, module_options)


def suboptions(groups, **options):
    """The suboptions of a list or dict option: the named shared groups plus its own (as argument_spec())."""
    return _compose(groups, options)


def new_key_size(key_type, key_size, default_sizes=None, where=None):
    """The size a new key_type key gets: key_size when the type takes it, unset the type's default.

    The one check of the key_spec group's options. default_sizes is a module's own table of defaults (ca's
    stronger RSA), else DEFAULT_KEY_SIZE; where names the options in an error (``certificates[0]``).
    """
    prefix = "%s: " % where if where else ""
    if key_type not in KEY_SIZES:
        raise PkiError("%sunknown key type %r; use one of: %s" % (prefix, key_type, ", ".join(KEY_TYPES)))
    if key_size is None:
        return (default_sizes or DEFAULT_KEY_SIZE)[key_type]
    allowed = [size for size in KEY_SIZES[key_type] if size is not None]
    if not allowed:
        raise PkiError("%san %s key has no size; leave key_size unset" % (prefix, key_type))
    if key_size not in allowed:
        raise PkiError("%sa %s key takes size %s, not %s"
                       % (prefix, key_type, ", ".join(str(size) for size in allowed), key_size))
    return key_size
