# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificate revocation lists: built from the index, re-signed only when needed."""

from __future__ import annotations

import datetime
import math

from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _index
from ansible_collections.fleet.mtls.plugins.module_utils import _params
from ansible_collections.fleet.mtls.plugins.module_utils import _policy
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

if c.HAS_CRYPTOGRAPHY:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

# The longest a CRL is signed for: ten years, for a root CA that signs rarely.
MAX_NEXT_UPDATE_DAYS = 3650
# The earliest revocation date a CRL entry carries (cryptography refuses older).
EARLIEST_REVOCATION_DATE = datetime.datetime(1950, 1, 1, tzinfo=c.UTC)


def check_schedule(next_update_days, refresh_days=None):
    """(next_update_days, refresh_days) of a CRL, checked; refresh_days defaults to half the validity.

    next_update_days is a whole number from 1 to MAX_NEXT_UPDATE_DAYS;
    refresh_days from 0 (re-sign an unchanged CRL only once it has expired)
    to next_update_days (re-sign it on every run).
    """
    _policy.check_whole_number(next_update_days, "next_update_days", 1, MAX_NEXT_UPDATE_DAYS, "days")
    if refresh_days is None:
        return next_update_days, next_update_days / 2.0
    # NaN compares false, so it is refused with the rest.
    if isinstance(refresh_days, bool) or not isinstance(refresh_days, (int, float)) \
            or not 0 <= refresh_days <= next_update_days:
        raise PkiError("refresh_days must be from 0 to next_update_days (%d), not %r"
                       % (next_update_days, refresh_days))
    return next_update_days, float(refresh_days)


def parse_revocation_date(text, serial):
    """The revocation date a caller gives for serial (ISO 8601), one a CRL can carry."""
    try:
        when = c.parse_isoformat(text)
    except PkiError:
        raise PkiError("revocation_date %r of serial %s is not an ISO 8601 date and time" % (text, serial))
    except OverflowError:  # in UTC, before year 1 or after 9999
        raise PkiError("revocation_date %r of serial %s is out of range" % (text, serial))
    if when < EARLIEST_REVOCATION_DATE:
        raise PkiError("revocation_date %r of serial %s is before 1950, which a CRL cannot carry" % (text, serial))
    return when


class Revocation(object):
    """One revoked serial as it appears in a CRL."""

    def __init__(self, serial, revoked_at, reason="unspecified"):
        if reason not in _index.REVOCATION_REASONS:
            raise PkiError("unknown revocation reason %r (use %s)" % (reason, ", ".join(_index.REVOCATION_REASONS)))
        self.serial = _index.normalize_serial(serial)
        self.revoked_at = revoked_at.replace(microsecond=0)
        self.reason = reason

    def key(self):
        return (self.serial, self.reason)


def load_crl(data, source="CRL"):
    blocks = c.pem_blocks(data, "X509 CRL")
    if not blocks:
        raise PkiError("%s is not a PEM CRL" % source)
    try:
        return x509.load_pem_x509_crl(blocks[0])
    except ValueError as exc:
        raise PkiError("%s is corrupt: %s" % (source, exc))


def crl_number(crl):
    value = _x509.extension_value(crl, x509.CRLNumber)
    return value.crl_number if value is not None else 0


def revocations_in(crl):
    found = []
    for revoked in crl:
        reason = _x509.extension_value(revoked, x509.CRLReason)
        found.append(Revocation(revoked.serial_number, c.revocation_date(revoked),
                                reason.reason.name if reason is not None else "unspecified"))
    return found


def is_current(crl, ca_cert, revocations, now, refresh_before):
    """Whether an existing CRL already says all this and is not about to lapse."""
    if not c.crl_signed_by(crl, ca_cert):
        return False
    next_update = c.crl_next_update(crl)
    if next_update is None or next_update - now <= refresh_before:
        return False
    return sorted(r.key() for r in revocations_in(crl)) == sorted(r.key() for r in revocations)


def build_crl(ca_cert, ca_key, revocations, number, now, next_update_days):
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(ca_cert.subject)
               .last_update(now.replace(microsecond=0))
               .next_update((now + datetime.timedelta(days=next_update_days)).replace(microsecond=0))
               .add_extension(x509.CRLNumber(number), critical=False)
               .add_extension(_x509.authority_key_identifier(ca_cert), critical=False))
    for revocation in sorted(revocations, key=lambda r: r.serial):
        entry = (x509.RevokedCertificateBuilder()
                 .serial_number(int(revocation.serial, 16))
                 .revocation_date(revocation.revoked_at))
        if revocation.reason != "unspecified":  # RFC 5280 5.3.1: omit reasonCode rather than say unspecified
            entry = entry.add_extension(x509.CRLReason(getattr(x509.ReasonFlags, revocation.reason)), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(ca_key, c.signature_hash(ca_key))


def crl_pem(crl):
    return crl.public_bytes(serialization.Encoding.PEM)


def describe_crl(crl, now=None):
    now = now or c.utcnow()
    next_update = c.crl_next_update(crl)
    return {
        "issuer": _x509.name_to_string(crl.issuer),
        "crl_number": crl_number(crl),
        "last_update": c.isoformat(c.crl_last_update(crl)),
        "next_update": c.isoformat(next_update) if next_update else None,
        "expired": bool(next_update and next_update <= now),
        "revoked_serials": sorted(r.serial for r in revocations_in(crl)),
    }


def trusted_crl_file(sources, anchors, issuer_certificates, now):
    """(pem_bytes, facts): the CRLs a host's servers check client chains against, each verified first.

    sources are [(label, pem_data)], each holding one CRL or more. A CRL is
    taken only when a CA the host trusts signed it: a trust anchor, or one
    of issuer_certificates [(label, cert)] that chains to an anchor (the
    issuing CAs, which the trust bundle does not hold). A CRL past its
    nextUpdate is refused: a server loading it would refuse every client.
    Of several CRLs of one CA (same name and key) the highest number is
    kept. The order does not depend on the order of the sources, so the
    same CRLs always give the same bytes.
    """
    trusted = list(anchors)
    waiting = list(issuer_certificates)
    while waiting:
        ready = [(label, cert) for label, cert in waiting
                 if _x509.is_ca(cert) and c.not_valid_after(cert) > now
                 and any(c.cert_signed_by(cert, parent) for parent in trusted)]
        if not ready:
            label, cert = waiting[0]
            raise PkiError("%s: %s is not a valid CA certificate issued by a CA the host trusts; it cannot vouch "
                           "for a CRL" % (label, _x509.name_to_string(cert.subject)))
        trusted += [cert for _label, cert in ready]
        waiting = [item for item in waiting if item not in ready]

    latest = {}
    for label, data in sources:
        blocks = c.pem_blocks(data, "X509 CRL")
        if not blocks:
            raise PkiError("%s is not a PEM CRL" % label)
        for number, block in enumerate(blocks, 1):
            source = "%s (CRL %d)" % (label, number) if len(blocks) > 1 else label
            crl = load_crl(block, source=source)
            signer = next((cert for cert in trusted if c.crl_signed_by(crl, cert)), None)
            if signer is None:
                raise PkiError("%s: the CRL of %s is not signed by a CA the host trusts"
                               % (source, _x509.name_to_string(crl.issuer)))
            next_update = c.crl_next_update(crl)
            if next_update is None or next_update <= now:
                raise PkiError("%s: the CRL of %s is past its next update (%s); servers loading it would refuse "
                               "every client. Publish a current CRL first"
                               % (source, _x509.name_to_string(crl.issuer),
                                  c.isoformat(next_update) if next_update else "none"))
            scope = (_x509.name_to_string(crl.issuer), c.public_key_fingerprint(signer.public_key()))
            kept = latest.get(scope)
            if kept is None or (crl_number(crl), c.crl_last_update(crl)) > (crl_number(kept), c.crl_last_update(kept)):
                latest[scope] = crl
    if not latest:
        raise PkiError("the CRL file would hold no CRL")
    ordered = [latest[scope] for scope in sorted(latest)]
    return b"".join(crl_pem(crl) for crl in ordered), [describe_crl(crl, now) for crl in ordered]


def refuse_private_key(data, source):
    """Refuse data that holds a private key, without quoting any of it: a CRL or certificate file never does."""
    if _params.PRIVATE_KEY_BLOCK.search(c.to_bytes(data).decode("latin-1")):
        raise PkiError("%s holds a private key; it is not read. A CRL or CA certificate file holds public data only: "
                       "keep the key in a file of its own" % source)


def crl_number_or_none(crl):
    """The CRL Number, or None for a CRL without one (crl_number() says 0)."""
    value = _x509.extension_value(crl, x509.CRLNumber)
    return value.crl_number if value is not None else None


def authority_key_identifier_hex(crl):
    """The key identifier of the CRL's Authority Key Identifier, colon-separated upper-case hex, or None."""
    value = _x509.extension_value(crl, x509.AuthorityKeyIdentifier)
    if value is None or value.key_identifier is None:
        return None
    return c.colon_hex(value.key_identifier)


def describe_crl_file(data, anchors=None, now=None, source="CRL file"):
    """The facts of every CRL in data (PEM, one CRL or more), in the order of the file; nothing is written.

    Only the "X509 CRL" blocks are parsed; a file holding a private key is
    refused before anything is parsed, and a block that does not load, a
    BEGIN without its END, or a file without any CRL is a PkiError naming
    the file and the block. With anchors (CA certificates), each CRL also
    says whether one of them bears its issuer's name (issuer_known) and
    whether one of those verifies its signature (verified).

    Returns {crls: [...], count, expired (any CRL), next_update (the
    earliest of all, or None)}.
    """
    now = now or c.utcnow()
    data = c.to_bytes(data)
    refuse_private_key(data, source)
    blocks = c.pem_blocks(data, "X509 CRL")
    begun = data.count(b"-----BEGIN X509 CRL-----")
    if not blocks and not begun:
        raise PkiError("%s holds no PEM CRL (no X509 CRL block)" % source)
    if begun != len(blocks):
        raise PkiError("%s holds an X509 CRL block without its END line: it is truncated or garbled" % source)
    crls = []
    next_updates = []
    for number, block in enumerate(blocks, 1):
        label = "%s (CRL %d)" % (source, number) if len(blocks) > 1 else source
        crl = load_crl(block, source=label)
        try:
            facts = describe_crl(crl, now)
            facts["crl_number"] = crl_number_or_none(crl)
            facts["authority_key_identifier"] = authority_key_identifier_hex(crl)
            if anchors is not None:
                named = [cert for cert in anchors if cert.subject == crl.issuer]
                facts["issuer_known"] = bool(named)
                facts["verified"] = any(c.crl_signed_by(crl, cert) for cert in named)
        except PkiError as exc:
            raise PkiError("%s: %s" % (label, exc))
        except (ValueError, TypeError, x509.DuplicateExtension) as exc:
            raise PkiError("%s is corrupt: %s" % (label, exc))
        next_update = c.crl_next_update(crl)
        facts["seconds_left"] = int(math.floor((next_update - now).total_seconds())) if next_update else None
        if next_update is not None:
            next_updates.append(next_update)
        crls.append(facts)
    return dict(crls=crls, count=len(crls), expired=any(facts["expired"] for facts in crls),
                next_update=c.isoformat(min(next_updates)) if next_updates else None)


def load_ca_certificates(data, source="CA certificates"):
    """The certificates of a PEM bundle CRLs are checked against; a bundle holding a private key is refused."""
    refuse_private_key(data, source)
    return _x509.load_certificates(data, source=source)
