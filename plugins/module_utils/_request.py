# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's side of issuance (the certificate_request module): decide, request, install.

Apart from the module so that the module can answer a re-run from its memo
(_memo) without importing any of this, or cryptography.
"""

from __future__ import annotations

import os

from ansible_collections.fleet.mtls.plugins.module_utils import _bundle
from ansible_collections.fleet.mtls.plugins.module_utils import _crl
from ansible_collections.fleet.mtls.plugins.module_utils import _crypto as c
from ansible_collections.fleet.mtls.plugins.module_utils import _files
from ansible_collections.fleet.mtls.plugins.module_utils import _install
from ansible_collections.fleet.mtls.plugins.module_utils import _layout
from ansible_collections.fleet.mtls.plugins.module_utils import _module
from ansible_collections.fleet.mtls.plugins.module_utils import _params
from ansible_collections.fleet.mtls.plugins.module_utils import _policy
from ansible_collections.fleet.mtls.plugins.module_utils import _x509
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError


def key_file(files, path, spec):
    """A key file of one certificate entry, with that entry's owner and mode."""
    return files.managed(path, _module.parse_mode(spec["key_mode"], 0o600), secret=True, owner=spec["owner"],
                         group=spec["group"])


def ensure_key(key_file, spec, diffs, reuse=True):
    """The key at key_file: the existing one when it fits, else a new one."""
    key, new = c.kept_or_new_key(key_file.current if reuse else None, spec["key_type"],
                                 _params.new_key_size(spec["key_type"], spec["key_size"]),
                                 source="private key %s" % key_file.path)
    if not new:
        return key, key_file.ensure_attributes(False)
    return key, key_file.ensure_attributes(key_file.replace(c.serialize_private_key(key), diffs))


def assess(spec, paths, anchors, now, params, issuers=None):
    """(reasons, facts, certs) for one entry, from its installed full chain and key (paths: _layout's)."""
    chain_data = _files.read_bytes(paths["fullchain"])
    if chain_data is None:
        return ["missing"], {}, []
    try:
        certs = _x509.load_certificates(chain_data, source="certificate %s" % spec["name"])
    except PkiError:
        return ["unreadable"], {}, []  # a broken full chain is issued again, like a missing one
    key_data = _files.read_bytes(paths["key"])
    key = c.load_private_key(key_data, source="private key of %s" % spec["name"]) if key_data else None
    sans = _x509.build_sans(spec["subject_alt_names"], spec["spiffe_id"])
    reasons, renew_at = _policy.renewal_decision(
        certs[0], now, params, "%s/%s" % (params["requester"], spec["name"]), key=key, anchors=anchors,
        intermediates=certs[1:], wanted_sans=sans, wanted_subject={"CN": spec["common_name"]},
        wanted_key_type=spec["key_type"], wanted_key_size=spec["key_size"], issuers=issuers)
    return reasons, dict(serial=c.serial_hex(certs[0].serial_number),
                         not_after=c.isoformat(c.not_valid_after(certs[0])), renew_at=c.isoformat(renew_at),
                         renew_at_time=renew_at), certs


def converge_files(files, spec, paths, certs, key_file, diffs):
    """Put right the files derived from a good full chain and key; the paths written or whose attributes were fixed.

    The certificate and the chain alone, and the combined PEM (certificate,
    chain, key) when the entry has one, must say what the full chain says:
    one deleted, corrupted or stale is written again from it, with no new
    request. The mode and owner of each file are put right too, above all of
    the key and of the combined PEM, which holds the key.
    """
    cert_pem = _x509.certificate_pem(certs[0])
    chain_pem = b"".join(_x509.certificate_pem(cert) for cert in certs[1:])
    key_mode = _module.parse_mode(spec["key_mode"], 0o600)
    wanted = [(paths["cert"], cert_pem, 0o644, False, spec["group"]),
              (paths["chain"], chain_pem, 0o644, False, spec["group"]),
              (paths["fullchain"], None, 0o644, False, spec["group"])]
    if spec["combined"]:
        # The one grant kept beyond key_mode is group read, with its group, given outside the entry (a service's
        # group gets its key through the entry's group and key_mode, as the certificate role gives python_service's).
        # Anything more is taken away.
        combined_path = paths["combined"]
        try:
            group_read = os.lstat(combined_path).st_mode & 0o040
        except OSError:
            group_read = 0
        kept_group = group_read and not key_mode & 0o040
        wanted.append((combined_path, cert_pem + chain_pem + key_file.current, key_mode | group_read, True,
                       None if kept_group else spec["group"]))
    targets = [(files.managed(path, mode, secret=secret, owner=spec["owner"], group=group), content)
               for path, content, mode, secret, group in wanted]
    for target, _content in targets:
        target.check_writable()
    repaired = []
    for target, content in targets:
        written = target.replace(content, diffs) if content is not None else False
        if target.ensure_attributes(written):
            repaired.append(target.path)
    return repaired


def check_certificate_entries(specs):
    """Refuse names that are not one file-name word, or that repeat: each names the files <directory>/<name>.*.

    Checked before anything is written, in every run (request and install),
    so that no name can reach outside directory ("../outside/pwn") or put
    two certificates in the same files. A lifetime asked for is a number of
    days the CA can sign (the CA's policy may still shorten it); a key size
    is one its type takes (the key_spec group's check).
    """
    names = []
    for index, spec in enumerate(specs):
        name = spec.get("name")
        if not isinstance(name, str) or not _policy.COMMON_NAME.fullmatch(name):
            raise PkiError("certificates[%d].name %r is not a certificate name: one word of letters, digits, '.', "
                           "'_' and '-', at most 64 characters, no '/' (it names the files <directory>/<name>.*)"
                           % (index, name))
        _params.new_key_size(spec["key_type"], spec["key_size"], where="certificates[%d]" % index)
        if spec.get("validity_days") is not None:
            _policy.check_whole_number(spec["validity_days"], "certificates[%d].validity_days" % index, 1,
                                       _policy.MAX_VALIDITY_DAYS, "days")
        names.append(name)
    if len(set(names)) != len(names):
        raise PkiError("certificate names must be unique, got: %s" % ", ".join(names))


def prepare(params, files, honour_force=True):
    """(result, now, horizon): what the host needs, when that was decided, until when a "nothing to do" holds.

    params: certificate_request's. In check mode (files.check_mode: the run's, or files.read_only()) this writes
    nothing: the read-only form of the decision.
    """
    check_mode = files.check_mode
    check_certificate_entries(params["certificates"])
    now = c.utcnow()
    directory = params["directory"].rstrip("/")
    diffs = []
    changed = False
    if not os.path.isdir(directory):
        changed = True
        if not check_mode:
            try:
                os.makedirs(directory, 0o755)
            except OSError as exc:
                raise PkiError("cannot make %s: %s" % (directory, exc.strerror))
    anchors = []
    for index, pem in enumerate(params["trust_certificates"]):
        anchors += _x509.load_certificates(pem, source="trust_certificates[%d]" % index)
    issuers = []
    for index, pem in enumerate(params["issuer_certificates"]):
        issuers += _x509.load_certificates(pem, source="issuer_certificates[%d]" % index)

    bundle_changed = False
    if params["ca_bundle_path"]:
        content, _kept, _dropped = _bundle.build_bundle(
            [("trust_certificates[%d]" % i, c.to_bytes(pem)) for i, pem in enumerate(params["trust_certificates"])],
            now)
        bundle = files.managed(params["ca_bundle_path"], 0o644)
        bundle.check_writable()
        bundle_changed = bundle.ensure_attributes(bundle.replace(content, diffs))

    crl_changed, crl_times = install_crls(params, files, anchors, now, diffs)

    states, requests = [], []
    involved, renew_times = list(anchors) + issuers, list(crl_times)
    for spec in params["certificates"]:
        paths = _layout.certificate_files(directory, spec["name"], spec["combined"])
        current_key = key_file(files, paths["key"], spec)
        current_key.check_writable()
        reasons, facts, certs = assess(spec, paths, anchors, now, params, issuers)
        involved += certs
        if "renew_at_time" in facts:
            renew_times.append(facts.pop("renew_at_time"))
        if honour_force and params["force_renewal"] and not reasons:
            reasons = ["forced"]
        renewal = bool(reasons) and bool(facts) and params["new_key_on_renewal"]
        state = dict(name=spec["name"], reasons=reasons, pending_key=renewal,
                     serial=facts.get("serial"), not_after=facts.get("not_after"), renew_at=facts.get("renew_at"),
                     repaired=[], files=paths)
        states.append(state)
        if not current_key.exists or reasons:
            changed = True
        if check_mode and (reasons or not current_key.exists):
            continue  # nothing to sign with yet: the decision is the report
        if renewal:
            key, _changed = ensure_key(key_file(files, paths["pending_key"], spec), spec, diffs)
        else:
            key, key_changed = ensure_key(current_key, spec, diffs, reuse=True)
            changed = changed or key_changed
            if key_changed and facts:
                state["repaired"].append(current_key.path)
        if not reasons:
            state["repaired"] += converge_files(files, spec, paths, certs, current_key, diffs)
            changed = changed or bool(state["repaired"])
        if reasons:
            csr = _x509.build_csr(key, {"CN": spec["common_name"]},
                                  _x509.build_sans(spec["subject_alt_names"], spec["spiffe_id"]))
            request = dict(name="%s/%s" % (params["requester"], spec["name"]), csr=_x509.csr_pem(csr).decode("ascii"),
                           profile=spec["profile"], requester=params["requester"])
            if spec["validity_days"] is not None:
                request["validity_days"] = spec["validity_days"]
            requests.append(request)
    result = dict(changed=changed or bundle_changed or crl_changed, requests=requests, certificates=states,
                  bundle_changed=bundle_changed, crl_changed=crl_changed, diff=diffs)
    return result, now, _policy.decision_horizon(now, involved, renew_times)


def install_crls(params, files, anchors, now, diffs):
    """(changed, [next updates]): the CRL file of option crl_path, from trust_crls, each CRL verified first.

    The CRLs' next updates bound how long a decision that found nothing to
    do holds, so that the memo never answers with a CRL that has lapsed.
    """
    if not params["crl_path"]:
        if params["trust_crls"] or params["crl_issuer_certificates"]:
            raise PkiError("trust_crls and crl_issuer_certificates need crl_path, the file to write them to")
        return False, []
    issuers = []
    for index, pem in enumerate(params["crl_issuer_certificates"]):
        label = "crl_issuer_certificates[%d]" % index
        issuers += [(label, cert) for cert in _x509.load_certificates(pem, source=label)]
    content, facts = _crl.trusted_crl_file(
        [("trust_crls[%d]" % i, c.to_bytes(pem)) for i, pem in enumerate(params["trust_crls"])],
        anchors, issuers, now)
    crl_file = files.managed(params["crl_path"], 0o644)
    crl_file.check_writable()
    changed = crl_file.ensure_attributes(crl_file.replace(content, diffs))
    return changed, [c.parse_isoformat(f["next_update"]) for f in facts]


def remember_if_settled(memo, result, now, horizon):
    """Keep a decision that found nothing to do in memo (None: nothing is kept), from now until horizon."""
    if memo is not None and horizon is not None and not result["changed"]:
        memo.remember(result, now.timestamp(), horizon.timestamp(),
                      lambda path, content: _files.atomic_write(path, content, 0o600))


def decide(params, files, memo):
    """The module's result; a decision that finds nothing to do is remembered in memo."""
    result, now, horizon = prepare(params, files)
    remember_if_settled(None if files.check_mode else memo, result, now, horizon)
    return result


def install_signed(params, files, now, diffs):
    """Install the certificates of option signed, each next to its key; one entry per certificate."""
    check_certificate_entries(params["certificates"])
    directory = params["directory"].rstrip("/")
    specs = dict((spec["name"], spec) for spec in params["certificates"])
    installed = []
    for index, item in enumerate(params["signed"]):
        requester, _slash, name = str(item.get("name", "")).partition("/")
        if requester != params["requester"] or name not in specs:
            raise PkiError("signed[%d]: %r is not one of %s's certificates (%s)"
                           % (index, item.get("name"), params["requester"], ", ".join(sorted(specs))))
        if not item.get("certificate"):
            raise PkiError("signed[%d] (%s) has no certificate" % (index, item["name"]))
        spec = specs[name]
        paths = _layout.certificate_files(directory, name, spec["combined"])
        options = dict(certificate=item["certificate"], chain=item.get("chain") or "", privatekey_path=paths["key"],
                       privatekey_passphrase=None, pending_privatekey_path=paths["pending_key"],
                       cert_path=paths["cert"], chain_path=paths["chain"], fullchain_path=paths["fullchain"],
                       combined_path=paths["combined"], mode=None,
                       key_mode=spec["key_mode"], owner=spec["owner"], group=spec["group"])
        outcome = _install.install_certificate(files, options, now, diffs, label="certificate %s" % item["name"])
        installed.append(dict(outcome, name=name))
    return installed


def install_and_settle(params, files, memo_for):
    """Install what was signed, then decide again on what is on disk and remember that nothing is left to do."""
    diffs = []
    installed = install_signed(params, files, c.utcnow(), diffs)
    # Keyed on the files as installed, before the decision reads them again.
    memo = None if files.check_mode else memo_for(params)
    # The request run made the keys and the bundle; this decision only looks.
    settled, now, horizon = prepare(params, files.read_only(), honour_force=False)
    remember_if_settled(memo, settled, now, horizon)
    return dict(settled, changed=any(entry["changed"] for entry in installed), installed=installed, diff=diffs)
