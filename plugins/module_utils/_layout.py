# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a certificate entry's files are: the one place that spells their names.

Standard library only. A certificate named ``server`` in ``/etc/fleet-mtls/certs``
has its key in ``server.key`` (a renewal's new key waits in
``server.key.pending``), the certificate alone in ``server.crt``, its issuing
chain in ``server.chain.pem``, both in ``server.fullchain.pem`` (what the
renewal decision reads) and, for servers that take one file (HAProxy,
gunicorn), certificate, chain and key in ``server.combined.pem``.
certificate_request returns these paths with each certificate, and the
certificate role hands them to the service roles.
"""

from __future__ import annotations


def certificate_files(directory, name, combined=False):
    """The paths of one certificate entry's files; combined is None unless the entry has a combined PEM."""
    base = "%s/%s" % (directory.rstrip("/"), name)
    return dict(key=base + ".key", pending_key=base + ".key.pending", cert=base + ".crt", chain=base + ".chain.pem",
                fullchain=base + ".fullchain.pem", combined=base + ".combined.pem" if combined else None)


def decision_files(files):
    """The files of an entry that the renewal decision reads or puts right (all but the pending key)."""
    return [files[kind] for kind in ("fullchain", "key", "cert", "chain", "combined") if files[kind]]
