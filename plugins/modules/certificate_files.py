#!/usr/bin/python
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: certificate_files
short_description: Install a signed certificate on its host, next to its key
version_added: 0.1.0
description:
  - Installs a certificate that M(fleet.mtls.sign) returned, on the host whose key it carries, as the files servers read
    it from - the certificate, its chain, the full chain (certificate then chain) and, for HAProxy, the combined PEM
    (full chain then key, mode V('0600')).
  - Everything is checked before the first file is written - the certificate must match the key, be valid now, and be
    issued by the first certificate of the chain. A bad certificate fails the task and leaves every file as it was, so
    a service is never reloaded onto a broken pair.
  - With O(pending_privatekey_path), a key made for a renewal goes live in the same step - it replaces
    O(privatekey_path) only once a certificate for it has been checked.
  - Each file is written atomically and only when its content changes, so consumers reload only for real changes.
  - The C(fleet.mtls.certificate) role installs with O(fleet.mtls.certificate_request#module:signed) instead (all of
    a host's certificates in one run, with the same checks); this module is for playbooks of your own.
author:
  - fleet.mtls maintainers (@fleet-mtls)
extends_documentation_fragment:
  - fleet.mtls.file_attributes
  - fleet.mtls.attributes.WRITES
  - fleet.mtls.attributes.CRYPTOGRAPHY
options:
  certificate:
    description: The certificate in PEM. A value that holds a private key (a combined PEM) is refused, masked in the
      output.
    type: str
    required: true
  chain:
    description: The certificates between it and the root, in PEM, issuing CA first (C(chain) of M(fleet.mtls.sign)).
    type: str
    default: ''
  privatekey_path:
    description: The key the certificate is for.
    type: path
    required: true
  privatekey_passphrase:
    description: Passphrase of the key. The value is never logged. A key that needs one cannot go into O(combined_path).
    type: str
  pending_privatekey_path:
    description:
      - A new key waiting for its certificate. When the certificate matches it, it is moved over O(privatekey_path).
        When it does not exist, the certificate must match O(privatekey_path).
    type: path
  cert_path:
    description: Where the certificate alone is written.
    type: path
    required: true
  chain_path:
    description: Where the chain is written.
    type: path
  fullchain_path:
    description: Where the certificate followed by its chain is written (what nginx and gunicorn serve).
    type: path
  combined_path:
    description: Where the full chain followed by the key is written (what HAProxy's C(crt) reads); mode V('0600').
    type: path
  key_mode:
    description:
      - Mode of the key and the combined file, for services whose group must read them (e.g. V('0640')).
      - O(mode) applies to the certificate, chain and full chain files (default V('0644')).
    type: raw
seealso:
  - module: fleet.mtls.sign
"""

EXAMPLES = r"""
- name: Install the server certificate for nginx and HAProxy
  fleet.mtls.certificate_files:
    certificate: "{{ item.certificate }}"
    chain: "{{ item.chain }}"
    privatekey_path: /etc/fleet-mtls/certs/server.key
    pending_privatekey_path: /etc/fleet-mtls/certs/server.key.pending
    cert_path: /etc/fleet-mtls/certs/server.crt
    fullchain_path: /etc/fleet-mtls/certs/server.fullchain.pem
    combined_path: /etc/fleet-mtls/certs/server.combined.pem
  loop: "{{ signed.certificates | selectattr('name', 'equalto', inventory_hostname ~ '/server') }}"
"""

RETURN = r"""
changed_files:
  description: The files that were (or in check mode would be) written.
  returned: always
  type: list
  elements: str
serial:
  description: Serial of the installed certificate, upper-case hex.
  returned: always
  type: str
not_after:
  description: End of validity of the installed certificate.
  returned: always
  type: str
key_promoted:
  description: Whether the pending key was moved into place.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _install
from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils import _params


def install(module):
    diffs = []
    result = _install.install_certificate(_module.Files(module), module.params, c.utcnow(), diffs)
    return dict(result, diff=diffs)


def main():
    module = AnsibleModule(
        argument_spec=_params.argument_spec(
            ["file_attributes"],
            certificate=dict(type="str", required=True),
            chain=dict(type="str", default=""),
            privatekey_path=dict(type="path", required=True),
            privatekey_passphrase=dict(type="str", no_log=True),
            pending_privatekey_path=dict(type="path"),
            cert_path=dict(type="path", required=True),
            chain_path=dict(type="path"),
            fullchain_path=dict(type="path"),
            combined_path=dict(type="path"),
            key_mode=dict(type="raw", no_log=False),
        ),
        supports_check_mode=True,
    )
    _module.run(module, install)


if __name__ == "__main__":
    main()
