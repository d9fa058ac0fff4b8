# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small PKI made with the collection's own core, for the unit tests of module_utils and modules."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _policy
from ansible_collections.fleet.mtls.plugins.module_utils import _x509

DAY = datetime.timedelta(days=1)


class Pki(object):
    """A root, an intermediate under it, and a way to issue leaves from it."""

    def __init__(self, name="Test", key_type="ec"):
        self.now = c.utcnow().replace(microsecond=0)
        self.root_key = c.generate_private_key(key_type)
        self.root = _x509.build_ca_certificate(self.root_key, {"CN": name + " Root"}, self.now - DAY,
                                               self.now + 3650 * DAY, path_length=1)
        self.issuing_key = c.generate_private_key(key_type)
        self.issuing = _x509.build_ca_certificate(self.issuing_key, {"CN": name + " Issuing"}, self.now - DAY,
                                                  self.now + 1825 * DAY, issuer_cert=self.root,
                                                  issuer_key=self.root_key, path_length=0)

    def csr(self, sans, key=None, subject=None, eku=("serverAuth", "clientAuth")):
        key = key or c.generate_private_key("ec")
        csr = _x509.build_csr(key, subject if subject is not None else {"CN": sans[0].split(":", 1)[1]},
                              _x509.build_sans(sans), extended_key_usage=list(eku))
        return key, csr

    def leaf(self, sans, profile="server_client", not_before=None, not_after=None, key=None):
        key, csr = self.csr(sans, key=key)
        cert = _x509.build_leaf_certificate(
            csr, _x509.common_name(csr.subject), self.issuing, self.issuing_key, _x509.sans_of(csr), _policy.PROFILES[profile],
            not_before or self.now - DAY, not_after or self.now + 90 * DAY, _x509.random_serial())
        return key, cert

    def write(self, directory, name, key, cert, chain=True):
        key_path = directory / (name + ".key")
        cert_path = directory / (name + ".crt")
        key_path.write_bytes(c.serialize_private_key(key))
        pem = _x509.certificate_pem(cert) + (_x509.certificate_pem(self.issuing) if chain else b"")
        cert_path.write_bytes(pem)
        return str(key_path), str(cert_path)

    def bundle_pem(self):
        return _x509.certificate_pem(self.root)


@pytest.fixture(scope="session")
def pki():
    return Pki()


@pytest.fixture(scope="session")
def other_pki():
    return Pki(name="Other")


def pytest_report_header(config):
    return "cryptography %s" % c.CRYPTOGRAPHY_VERSION
