# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A private key pasted into an option that is logged is refused, and the task's output never shows it.

The audit's two cases: a combined PEM given as certificate_files' certificate
(accepted silently, key in the -vvv invocation) and as ca_bundle's
certificates (refused, but only after the invocation had shown it).
"""

from __future__ import annotations

import hashlib
import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _params
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.modules import ca_bundle
from ansible_collections.fleet.mtls.plugins.modules import certificate_files


def run(module, args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def digests(directory):
    return dict((path.name, hashlib.sha256(path.read_bytes()).hexdigest()) for path in sorted(directory.iterdir()))


@pytest.fixture
def combined(tmp_path, pki):
    """A leaf's key written to disk, and the combined PEM (certificate, chain, key) a careless operator pastes."""
    key, cert = pki.leaf(["DNS:web1"])
    key_path, _cert_path = pki.write(tmp_path, "web1", key, cert)
    key_pem = c.serialize_private_key(key).decode("ascii")
    return key_path, (_x509.certificate_pem(cert) + _x509.certificate_pem(pki.issuing)).decode("ascii") + key_pem


@pytest.mark.parametrize("where", ["certificate", "chain"])
def test_certificate_files_refuses_a_combined_pem_and_masks_it(tmp_path, pki, capsys, combined, where):
    key_path, pem = combined
    cert_only = pem.split("-----BEGIN PRIVATE KEY-----")[0]
    args = dict(certificate=cert_only, chain=_x509.certificate_pem(pki.issuing).decode("ascii"),
                privatekey_path=key_path, cert_path=str(tmp_path / "out.crt"), _ansible_diff=True,
                _ansible_verbosity=3)
    args[where] = pem
    before = digests(tmp_path)
    result = run(certificate_files, args, capsys)
    assert result.get("failed") and result["msg"].startswith("%s holds a private key" % where), result
    output = json.dumps(result)
    assert "PRIVATE KEY" not in output and pem not in output
    assert result["invocation"]["module_args"][where] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert digests(tmp_path) == before


def test_ca_bundle_refuses_a_combined_pem_and_masks_it(tmp_path, pki, capsys, combined):
    _key_path, pem = combined
    args = dict(path=str(tmp_path / "bundle.pem"), certificates=[pki.bundle_pem().decode("ascii"), pem],
                _ansible_diff=True, _ansible_verbosity=3)
    before = digests(tmp_path)
    result = run(ca_bundle, args, capsys)
    assert result.get("failed") and result["msg"].startswith("certificates[1] holds a private key"), result
    assert "PRIVATE KEY" not in json.dumps(result)
    assert digests(tmp_path) == before


@pytest.mark.parametrize("label", ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY",
                                   "OPENSSH PRIVATE KEY"])
def test_every_private_key_label_is_found(label):
    value = "-----BEGIN %s-----\nAAAA\n-----END %s-----\n" % (label, label)
    spec = dict(certificates=dict(type="list", elements="str"), secret=dict(type="str", no_log=True))
    assert _params.private_keys_in(spec, dict(certificates=["x", value], secret=value)) == [("certificates[1]", value)]


def test_nested_options_are_searched_and_no_log_ones_left_alone():
    key = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"
    spec = dict(signed=dict(type="list", elements="dict", options=dict(
        certificate=dict(type="str"), passphrase=dict(type="str", no_log=True))))
    params = dict(signed=[dict(certificate="cert", passphrase=key), dict(certificate=key, passphrase=None)])
    assert _params.private_keys_in(spec, params) == [("signed[1].certificate", key)]
    assert _params.private_keys_in(spec, dict(signed=[dict(certificate="-----BEGIN CERTIFICATE-----")])) == []
