# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Trust bundles: which CA certificates a server or client trusts, as one file."""

from __future__ import annotations

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError


def build_bundle(sources, now, drop_expired=False):
    """(pem_bytes, kept_certs, dropped_certs) from [(label, pem_data)].

    Duplicates (same SHA-256 fingerprint) are kept once. The order does not
    depend on the order of the sources: by subject, then start of validity
    (so an old and a new CA of the same name sit together, oldest first),
    then fingerprint; so the same set of CAs always gives the same bytes.
    """
    by_fingerprint = {}
    for label, data in sources:
        for cert in _x509.load_certificates(data, source=label):
            if not _x509.is_ca(cert):
                raise PkiError("%s: %s is not a CA certificate (basicConstraints CA:TRUE is missing); "
                               "a trust bundle holds CAs only" % (label, _x509.name_to_string(cert.subject)))
            by_fingerprint.setdefault(c.fingerprint(cert), cert)
    kept, dropped = [], []
    for cert in by_fingerprint.values():
        (dropped if drop_expired and c.not_valid_after(cert) <= now else kept).append(cert)
    if not kept:
        raise PkiError("the bundle would hold no certificate")
    kept.sort(key=lambda cert: (_x509.name_to_string(cert.subject), c.not_valid_before(cert), c.fingerprint(cert)))
    return b"".join(_x509.certificate_pem(cert) for cert in kept), kept, dropped
