# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A module's parameters, with the standard library only: the shared option groups and the checks that come first.

The option groups are documented once each, in the doc fragment of the same
name in plugins/doc_fragments; argument_spec() puts a module's spec together.

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


# The choices several modules offer, named once (the modules' DOCUMENTATION lists them too, and sanity checks
# that each matches its module's argument_spec). _crypto.KEY_SIZES and _policy.PROFILES hold what each one means.
KEY_TYPES = ("ec", "rsa", "ed25519")
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
}


def argument_spec(groups, **module_options):
    """The module's argument_spec: the named shared groups plus its own options."""
    spec = {}
    for group in groups:
        spec.update(copy.deepcopy(OPTION_GROUPS[group]))
    spec.update(module_options)
    return spec
