#!/usr/bin/python
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: private_key
short_description: Make sure a private key exists on the host that will use it
version_added: 0.1.0
description:
  - Generates an EC (P-256 or P-384), RSA (2048, 3072 or 4096 bits) or Ed25519 private key on the managed host, so the key
    never has to travel.
  - An existing key is kept unless its type or size differs from what is asked, or O(force=true). A key that cannot be read
    (wrong passphrase, corrupt file) is an error, never a silent replacement.
  - Giving O(passphrase) for an existing unencrypted key encrypts that same key; it does not make a new one. An encrypted
    key is only ever read with its passphrase.
  - The key is written atomically with mode V('0600') unless O(mode) says otherwise. No key material is ever returned.
author:
  - fleet.mtls maintainers (@fleet-mtls)
extends_documentation_fragment:
  - fleet.mtls.key_spec
  - fleet.mtls.file_attributes
  - fleet.mtls.attributes.WRITES
  - fleet.mtls.attributes.CRYPTOGRAPHY
options:
  path:
    description:
      - Where the PEM private key (PKCS#8) is kept.
    type: path
    required: true
  # key_type and key_size are the key_spec fragment's; this module also takes them by their first names.
  key_type:
    aliases: [type]
  key_size:
    aliases: [size]
  passphrase:
    description:
      - Encrypt the key with this passphrase. The value is never logged.
    type: str
  force:
    description:
      - Make a new key even when the existing one fits.
    type: bool
    default: false
  state:
    description:
      - V(absent) removes the key file.
    type: str
    choices: [present, absent]
    default: present
seealso:
  - module: fleet.mtls.csr
"""

EXAMPLES = r"""
- name: EC P-256 key for the web server, made on the web server
  fleet.mtls.private_key:
    path: /etc/ssl/fleet/web.key
    owner: root
    group: root

- name: RSA 3072 key, encrypted
  fleet.mtls.private_key:
    path: /etc/ssl/fleet/legacy.key
    key_type: rsa
    key_size: 3072
    passphrase: "{{ vault_legacy_key_passphrase }}"
"""

RETURN = r"""
path:
  description: Path of the key.
  returned: always
  type: str
key_type:
  description: Key algorithm of the key now in place.
  returned: when O(state=present)
  type: str
  sample: ec
key_size:
  description: Key size in bits (the curve size for EC); null for Ed25519.
  returned: when O(state=present)
  type: int
  sample: 256
fingerprint:
  description: SHA-256 of the public key (SubjectPublicKeyInfo), the same value M(fleet.mtls.certificate_info) reports
    for the certificate that carries it.
  returned: when O(state=present)
  type: str
  sample: "5B:2C:...:9E"
public_key:
  description: The public key in PEM.
  returned: when O(state=present)
  type: str
regenerated:
  description: Whether a new key was (or in check mode would be) made.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils import _params


def ensure_key(module):
    params = module.params
    key_file = _module.ManagedFile(module, params["path"], mode=_module.parse_mode(params["mode"], 0o600), secret=True)
    diffs = []
    result = dict(path=params["path"], regenerated=False)

    if params["state"] == "absent":
        result["changed"] = key_file.remove(diffs)
        result["diff"] = diffs
        return result

    wanted_type = params["key_type"]
    wanted_size = _params.new_key_size(wanted_type, params["key_size"])
    key_file.check_writable()

    # Unreadable is an error: replacing it would silently break whoever holds the certificate.
    current = None if params["force"] else key_file.current
    encrypted = current is not None and c.is_encrypted_pem(current)
    key, new = c.kept_or_new_key(current, wanted_type, wanted_size, params["passphrase"] if encrypted else None,
                                 source="private key %s" % params["path"])
    if new:
        result["regenerated"] = True
        content = c.serialize_private_key(key, params["passphrase"])
    elif params["passphrase"] and not c.is_encrypted_pem(key_file.current):
        content = c.serialize_private_key(key, params["passphrase"])
    else:
        content = key_file.current

    changed = key_file.replace(content, diffs)
    changed = key_file.ensure_attributes(changed)
    key_type, size = c.key_type_and_size(key)
    result.update(changed=changed, key_type=key_type, key_size=size, fingerprint=c.public_key_fingerprint(key),
                  public_key=c.public_key_pem(key).decode("ascii"), diff=diffs)
    return result


def main():
    module = AnsibleModule(
        argument_spec=_params.argument_spec(
            ["file_attributes", "key_spec"],
            path=dict(type="path", required=True),
            key_type=dict(aliases=["type"]),
            key_size=dict(aliases=["size"]),
            passphrase=dict(type="str", no_log=True),
            force=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    _module.run(module, ensure_key)


if __name__ == "__main__":
    main()
