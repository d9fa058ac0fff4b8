# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""adoption_info's counting, over lines in the exact shapes the three service roles write."""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import pathlib
import re

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import _adoption
from ansible_collections.fleet.mtls.plugins.module_utils._errors import PkiError

UTC = datetime.timezone.utc
REPO = pathlib.Path(__file__).resolve().parents[4]

# nginx 1.22 with the role's log_format (roles/nginx/templates/fleet-mtls.conf.j2): no certificate, a good one,
# a self-signed one refused with 403 in permissive mode.
NGINX_NONE = (
    '{"time":"2026-11-27T00:22:36+00:00","server":"nginx","site":"api","client_addr":"10.0.0.35",'
    '"tls_client_verify":"NONE","tls_client_subject":"","tls_client_serial":"","tls_client_spiffe_id":"",'
    '"tls_client_fingerprint":"","tls_protocol":"TLSv1.2","host":"api.lab.internal","request":"GET / HTTP/1.1",'
    '"user_agent":"curl/7.88.1","status":200,"bytes_sent":3,"request_time":0.000}')
NGINX_SUCCESS = (
    '{"time":"2026-11-27T00:22:37+00:00","server":"nginx","site":"api","client_addr":"10.0.0.21",'
    '"tls_client_verify":"SUCCESS","tls_client_subject":"CN=client1,O=Example",'
    '"tls_client_serial":"681C0ECA15D578FCB168C90BBC4A9607F517346C","tls_client_spiffe_id":"",'
    '"tls_client_fingerprint":"a340b84b8ffd16d71c4aeb6e9c05b5b16de17bf0","tls_protocol":"TLSv1.3",'
    '"host":"api.lab.internal","request":"GET /x HTTP/1.1","user_agent":"python-requests/2.28.1","status":200,'
    '"bytes_sent":3,"request_time":0.000}')
NGINX_FAILED = (
    '{"time":"2026-11-27T00:22:38+00:00","server":"nginx","site":"api","client_addr":"10.0.0.9",'
    '"tls_client_verify":"FAILED:self-signed certificate","tls_client_subject":"CN=rogue",'
    '"tls_client_serial":"07747EF876B36ED79EBA1D894A124D685F9EFD85","tls_client_spiffe_id":"",'
    '"tls_client_fingerprint":"bc2445a720e3a4009e484c0f97b0baf2fcdc03b2","tls_protocol":"TLSv1.2",'
    '"host":"api.lab.internal","request":"GET / HTTP/1.1","status":403,"bytes_sent":4,"request_time":0.000}')

# HAProxy's log-format and (3.0) error-log-format (roles/haproxy/templates/haproxy.cfg.j2).
HAPROXY_NONE = (
    '{"time":"2026-11-27T00:23:00Z","server":"haproxy","site":"permissive","client_addr":"10.0.0.35",'
    '"client_port":55654,"tls_client_verify":"NONE","tls_client_subject":"","tls_client_serial":"",'
    '"tls_client_fingerprint":"","tls_client_spiffe_id":"","tls_version":"TLSv1.3","status":200,"method":"GET",'
    '"uri":"/","user_agent":"fleet.mtls-tls_probe","backend":"app","backend_server":"app1","duration_ms":3,'
    '"bytes":152}')
HAPROXY_REVOKED = (
    '{"time":"2026-11-27T00:23:01Z","server":"haproxy","site":"permissive","client_addr":"10.0.0.10",'
    '"client_port":55660,"tls_client_verify":"FAILED:certificate revoked","tls_client_subject":"CN=client1",'
    '"tls_client_serial":"057E829BE949F669D312265160AB98813095CBAF","tls_client_fingerprint":"9F1C",'
    '"tls_client_spiffe_id":"","tls_version":"TLSv1.3","status":403,"method":"GET","uri":"/","backend":"permissive",'
    '"backend_server":"<NOSRV>","duration_ms":0,"bytes":161}')
HAPROXY_ERROR_LOG = (
    '{"time":"2026-11-27T00:23:02Z","server":"haproxy","site":"strict","client_addr":"10.0.0.10",'
    '"client_port":40112,"tls_client_verify":"FAILED:SSL client certificate not trusted",'
    '"tls_client_subject":"CN=rogue","tls_client_serial":"07747EF876B36ED79EBA1D894A124D685F9EFD85",'
    '"tls_client_fingerprint":"","tls_client_spiffe_id":"","tls_error":"SSL client certificate not trusted",'
    '"tls_verify_error":"self-signed certificate","tls_ca_verify_error":"","status":0}')
# HAProxy 2.6 (no error-log-format), a refused handshake; and a notice both versions write on reload.
HAPROXY_26_REFUSED = "10.0.0.4:51738 [27/Nov/2026:00:23:03.842] strict/1: SSL handshake failure"
HAPROXY_NOTICE = "Proxy strict stopped (cumulated conns: FE: 12, BE: 0)."

# The python_service role's AccessLog (roles/python_service/files/fleet_mtls_identity.py): local time with an
# offset and milliseconds; a handshake refused for its certificate has status 0 and a tls_error.
PYTHON_SUCCESS = (
    '{"time":"2026-11-27T01:24:00.125+01:00","server":"python_service","site":"inventory",'
    '"client_addr":"10.0.0.21","tls_client_verify":"SUCCESS","tls_client_subject":"CN=client1",'
    '"tls_client_serial":"5A3F","tls_client_spiffe_id":"spiffe://lab.internal/client/client1","status":200,'
    '"method":"GET","path":"/","user_agent":"Python-urllib/3.11"}')
PYTHON_REFUSED = (
    '{"time":"2026-11-27T01:24:01.500+01:00","server":"python_service","site":"inventory",'
    '"client_addr":"10.0.0.36","tls_client_verify":"FAILED:certificate has expired","tls_client_subject":"",'
    '"tls_client_serial":"","tls_client_spiffe_id":"","status":0,'
    '"tls_error":"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired (_ssl.c:1006)"}')
PYTHON_NONE_STRICT = (
    '{"time":"2026-11-27T01:24:02.000+01:00","server":"python_service","site":"inventory",'
    '"client_addr":"10.0.0.35","tls_client_verify":"NONE","tls_client_subject":"","tls_client_serial":"",'
    '"tls_client_spiffe_id":"","status":0,"tls_error":"[SSL: PEER_DID_NOT_RETURN_A_CERTIFICATE] ..."}')


def write_log(path, *lines):
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def t(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize("verify, expected", [
    ("SUCCESS", ("valid", None)),
    ("NONE", ("none", None)),
    ("", ("none", None)),
    ("-", ("none", None)),
    (None, ("none", None)),
    ("FAILED:certificate has expired", ("failed", "certificate has expired")),
    ("FAILED:SSL client certificate not trusted", ("failed", "SSL client certificate not trusted")),
    ("FAILED:", ("failed", "unspecified")),
    ("GENEROUS", ("failed", "GENEROUS")),
])
def test_classify(verify, expected):
    assert _adoption.classify(verify) == expected


def test_each_format_parses_to_a_record():
    records = {name: _adoption.parse_line(line, UTC) for name, line in [
        ("nginx_none", NGINX_NONE), ("nginx_success", NGINX_SUCCESS), ("nginx_failed", NGINX_FAILED),
        ("haproxy_none", HAPROXY_NONE), ("haproxy_error", HAPROXY_ERROR_LOG), ("haproxy_26", HAPROXY_26_REFUSED),
        ("python_success", PYTHON_SUCCESS), ("python_refused", PYTHON_REFUSED)]}
    assert records["nginx_none"] == _adoption.Record(t("2026-11-27T00:22:36Z"), "nginx", "api", "10.0.0.35",
                                                     "none", None, "", "curl/7.88.1", "", 200)
    assert records["nginx_success"].outcome == "valid"
    assert records["nginx_success"].identity == "CN=client1,O=Example"
    assert (records["nginx_failed"].outcome, records["nginx_failed"].reason, records["nginx_failed"].identity) == (
        "failed", "self-signed certificate", "CN=rogue")
    assert records["haproxy_none"].time == t("2026-11-27T00:23:00Z")
    assert records["haproxy_none"].site == "permissive"
    assert records["haproxy_none"].user_agent == "fleet.mtls-tls_probe"
    assert records["haproxy_error"] == _adoption.Record(t("2026-11-27T00:23:02Z"), "haproxy", "strict", "10.0.0.10",
                                                        "failed", "SSL client certificate not trusted", "CN=rogue", "", "",
                                                        0)
    assert records["haproxy_26"] == _adoption.Record(t("2026-11-27T00:23:03.842Z"), "haproxy", "strict", "10.0.0.4",
                                                     "failed", "SSL handshake failure", "", "", "", 0)
    # The SPIFFE ID is the identity when there is one; +01:00 is read as such.
    assert records["python_success"].identity == "spiffe://lab.internal/client/client1"
    assert records["python_success"].time == t("2026-11-27T00:24:00.125Z")
    assert (records["python_refused"].outcome, records["python_refused"].reason) == (
        "failed", "certificate has expired")
    # Refused: a handshake (status 0) or a 403, whatever the certificate's outcome; served is not.
    assert dict((name, _adoption.refused(record)) for name, record in records.items()) == dict(
        nginx_none=False, nginx_success=False, nginx_failed=True, haproxy_none=False, haproxy_error=True,
        haproxy_26=True, python_success=False, python_refused=True)


def test_haproxy_26_text_line_is_read_in_local_time_and_with_ipv6():
    paris_winter = datetime.timezone(datetime.timedelta(hours=1))
    record = _adoption.parse_line(HAPROXY_26_REFUSED, paris_winter)
    assert record.time == t("2026-11-26T23:23:03.842Z")
    record = _adoption.parse_line("2001:db8::4:51738 [27/Nov/2026:00:23:03.842] strict/1: "
                                  "Timeout during SSL handshake", UTC)
    assert (record.client_addr, record.reason) == ("2001:db8::4", "Timeout during SSL handshake")
    # Without a zone given, the host's own local time.
    naive = datetime.datetime(2026, 11, 27, 0, 23, 3, 842000)
    assert _adoption.parse_line(HAPROXY_26_REFUSED).time == naive.astimezone(UTC)


def test_json_after_a_syslog_prefix():
    record = _adoption.parse_line("Nov 27 00:23:00 lb1 haproxy[812]: " + HAPROXY_NONE, UTC)
    assert (record.server, record.outcome, record.client_addr) == ("haproxy", "none", "10.0.0.35")


@pytest.mark.parametrize("line", [
    HAPROXY_NOTICE,
    "not a log line",
    "10.0.0.4:51738 [27/Foo/2026:00:23:03.842] strict/1: SSL handshake failure",
    "10.0.0.4:51738 [31/Nov/2026:00:23:03.842] strict/1: SSL handshake failure",
])
def test_lines_of_text_without_an_access_record(line):
    assert _adoption.parse_line(line, UTC) is None


@pytest.mark.parametrize("line, why", [
    (NGINX_NONE[:80], "not JSON"),  # cut short, as a line still being written
    ('{"time":"2026-11-27T00:22:36+00:00","server":"nginx","status":200}', "no tls_client_verify"),
    (NGINX_NONE.replace("2026-11-27T00:22:36+00:00", "yesterday"), "no readable time"),
    (NGINX_NONE.replace('"2026-11-27T00:22:36+00:00"', "1795825356"), "no readable time"),
    # A site name with a quote in it, written into nginx's log_format unescaped.
    (NGINX_NONE.replace('"site":"api"', '"site":"a"pi"'), "not JSON"),
    ('{"a": "list"', "not JSON"),
    ('x {"a": 1}', "no tls_client_verify"),
])
def test_lines_that_should_hold_a_record_and_do_not(line, why):
    with pytest.raises(_adoption.InvalidLine, match=why):
        _adoption.parse_line(line, UTC)


def test_an_unreadable_line_fails_the_count_naming_file_and_line(tmp_path):
    broken = NGINX_NONE.replace('"site":"api"', '"site":"a"pi"').replace("10.0.0.35", "SECRET-IN-LINE")
    log = write_log(tmp_path / "access.log", NGINX_SUCCESS, "", broken, NGINX_SUCCESS)
    with pytest.raises(PkiError, match=r"access log %s, line 3: not JSON" % re.escape(log)) as failure:
        _adoption.count_adoption([log])
    assert "SECRET-IN-LINE" not in str(failure.value)
    # A report over a damaged log may read on, counting the line apart.
    skipped = _adoption.count_adoption([log], invalid_lines="skip")
    assert skipped["totals"]["valid"] == 2 and skipped["lines_invalid"] == 1 and skipped["lines_skipped"] == 0
    with pytest.raises(PkiError, match="invalid_lines must be fail or skip"):
        _adoption.count_adoption([log], invalid_lines="ignore")


def test_addresses_are_normalized_and_sorted_numerically():
    assert _adoption.normalize_address("::ffff:10.0.0.5") == "10.0.0.5"
    assert _adoption.normalize_address("2001:DB8:0:0::1") == "2001:db8::1"
    assert _adoption.normalize_address(" unix ") == "unix"
    addresses = ["unix", "2001:db8::1", "10.0.0.10", "10.0.0.9", "192.168.0.1", ""]
    assert sorted(addresses, key=_adoption.address_sort_key) == [
        "10.0.0.9", "10.0.0.10", "192.168.0.1", "2001:db8::1", "", "unix"]


def test_three_servers_logs_counted_per_client(tmp_path):
    nginx = write_log(tmp_path / "fleet-mtls-access.log", NGINX_NONE, NGINX_SUCCESS, NGINX_FAILED, "",
                      NGINX_SUCCESS.replace("00:22:37", "00:22:39"))
    haproxy = write_log(tmp_path / "access.log", HAPROXY_NONE, HAPROXY_REVOKED, HAPROXY_NOTICE, HAPROXY_ERROR_LOG,
                        HAPROXY_26_REFUSED)
    python = write_log(tmp_path / "access.json", PYTHON_SUCCESS, PYTHON_REFUSED, PYTHON_NONE_STRICT)
    result = _adoption.count_adoption([nginx, haproxy, python], local_timezone=UTC)

    # refused: the 403s (nginx's self-signed, HAProxy's revoked) and every status 0 (refused handshakes)
    assert result["totals"] == dict(requests=11, valid=3, none=3, failed=5, refused=6)
    assert result["adoption"] == 3 / 11
    assert result["lines_skipped"] == 1 and result["records_outside_window"] == 0
    assert result["missing_paths"] == []
    assert [(f["path"], f["records"], f["lines_skipped"]) for f in result["files"]] == [
        (nginx, 4, 0), (haproxy, 4, 1), (python, 3, 0)]
    assert result["failure_reasons"] == {
        "SSL client certificate not trusted": 1, "SSL handshake failure": 1, "certificate has expired": 1,
        "certificate revoked": 1, "self-signed certificate": 1}

    clients = [(x["client_addr"], x["identity"], x["valid"], x["none"], x["failed"], x["refused"])
               for x in result["clients"]]
    assert clients == [
        ("10.0.0.4", "", 0, 0, 1, 1),
        ("10.0.0.9", "CN=rogue", 0, 0, 1, 1),
        ("10.0.0.10", "CN=client1", 0, 0, 1, 1),
        ("10.0.0.10", "CN=rogue", 0, 0, 1, 1),
        ("10.0.0.21", "CN=client1,O=Example", 2, 0, 0, 0),
        ("10.0.0.21", "spiffe://lab.internal/client/client1", 1, 0, 0, 0),
        # served twice without a certificate (permissive), refused once (the service, strict)
        ("10.0.0.35", "", 0, 3, 0, 1),
        ("10.0.0.36", "", 0, 0, 1, 1),
    ]
    no_cert = result["clients"][6]
    assert no_cert == dict(client_addr="10.0.0.35", identity="", requests=3, valid=0, none=3, failed=0, refused=1,
                           failure_reasons={}, user_agents=["curl/7.88.1", "fleet.mtls-tls_probe"],
                           first_seen="2026-11-27T00:22:36Z", last_seen="2026-11-27T00:24:02Z",
                           sites=["api", "inventory", "permissive"])
    assert result["clients"][4]["first_seen"] == "2026-11-27T00:22:37Z"
    assert result["clients"][4]["last_seen"] == "2026-11-27T00:22:39Z"
    assert result["clients"][3]["failure_reasons"] == {"SSL client certificate not trusted": 1}
    assert result["clients_without_certificate"] == ["10.0.0.35"]
    assert result["clients_with_failed_certificate"] == ["10.0.0.4", "10.0.0.9", "10.0.0.10", "10.0.0.36"]

    assert result["sites"] == [
        dict(site="api", server="nginx", requests=4, valid=2, none=1, failed=1, refused=1, adoption=0.5),
        dict(site="inventory", server="python_service", requests=3, valid=1, none=1, failed=1, refused=2,
             adoption=1 / 3),
        dict(site="permissive", server="haproxy", requests=2, valid=0, none=1, failed=1, refused=1, adoption=0.0),
        dict(site="strict", server="haproxy", requests=2, valid=0, none=0, failed=2, refused=2, adoption=0.0),
    ]
    assert result["window"] == dict(since=None, until=None, first_seen="2026-11-27T00:22:36Z",
                                    last_seen="2026-11-27T00:24:02Z")
    json.dumps(result)  # what the module returns must be plain JSON


def test_window_since_inclusive_until_exclusive_across_offsets(tmp_path):
    # The same instant in three spellings: nginx +00:00, HAProxy Z, the service +01:00 with milliseconds.
    log = write_log(tmp_path / "mixed.log",
                    NGINX_NONE,  # 00:22:36Z
                    HAPROXY_NONE,  # 00:23:00Z
                    PYTHON_SUCCESS,  # 00:24:00.125Z
                    PYTHON_REFUSED)  # 00:24:01.500Z

    def window(**kwargs):
        result = _adoption.count_adoption([log], **kwargs)
        return result["totals"]["requests"], result["records_outside_window"], result["window"]

    assert window(since="2026-11-27T00:23:00Z")[:2] == (3, 1)  # at since: counted
    assert window(since="2026-11-27T01:23:00+01:00")[:2] == (3, 1)
    assert window(since="2026-11-27T00:23:00")[:2] == (3, 1)  # naive: UTC
    assert window(since="2026-11-27T00:23:00.001Z")[:2] == (2, 2)
    assert window(until="2026-11-27T00:24:00.125Z")[:2] == (2, 2)  # at until: not counted
    assert window(until="2026-11-27T01:24:00.126+01:00")[:2] == (3, 1)
    requests, outside, span = window(since="2026-11-26T23:23:00-01:00", until="2026-11-27T00:24:01Z")
    assert (requests, outside) == (2, 2)
    assert span == dict(since="2026-11-27T00:23:00Z", until="2026-11-27T00:24:01Z",
                        first_seen="2026-11-27T00:23:00Z", last_seen="2026-11-27T00:24:00Z")
    assert window(since="2026-11-28")[:2] == (0, 4)


TOKEN = "Qm9uZGluZ1Rva2VuT2ZUaGVGbGVldA"


def test_the_fleets_own_probes_are_not_clients(tmp_path):
    # A certificate-less probe of a permissive server (a verification's), with the token; NGINX_NONE a real client.
    probe = HAPROXY_NONE.replace('"status":200', '"probe":"%s","status":200' % TOKEN)
    log = write_log(tmp_path / "access.log", NGINX_NONE, probe, NGINX_SUCCESS, HAPROXY_ERROR_LOG)

    everything = _adoption.count_adoption([log])
    probes_apart = _adoption.count_adoption([log], probe_token=TOKEN)

    assert everything["totals"] == dict(requests=4, valid=1, none=2, failed=1, refused=1)
    assert everything["records_excluded"] == 0
    # A refused handshake carries no token and still counts.
    assert probes_apart["totals"] == dict(requests=3, valid=1, none=1, failed=1, refused=1)
    assert probes_apart["records_excluded"] == 1
    assert probes_apart["files"][0]["excluded"] == 1 and probes_apart["files"][0]["records"] == 3
    assert probes_apart["clients_without_certificate"] == ["10.0.0.35"]
    # Which program called without one, for the operator (never for a decision).
    assert [client["user_agents"] for client in probes_apart["clients"]] == [[], [], ["curl/7.88.1"]]
    assert "permissive" not in [site["site"] for site in probes_apart["sites"]]
    # Excluded records are in the window, not outside it.
    assert probes_apart["records_outside_window"] == 0
    assert _adoption.count_adoption([log], since="2026-11-27T00:23:01Z", probe_token=TOKEN)["records_excluded"] == 0


@pytest.mark.parametrize("forged", [
    # The probe's user agent, which any client can send.
    '"user_agent":"fleet.mtls-tls_probe/1.0","status":200',
    # A wrong token, one cut short, one with more after it, and an empty one.
    '"probe":"guess","status":200',
    '"probe":"%s","status":200' % TOKEN[:-1],
    '"probe":"%sx","status":200' % TOKEN,
    '"probe":"","status":200',
])
def test_a_client_cannot_pass_for_a_probe(tmp_path, forged):
    lines = [NGINX_NONE.replace('"status":200', forged)] * 50
    log = write_log(tmp_path / "access.log", *lines)
    result = _adoption.count_adoption([log], probe_token=TOKEN)
    assert result["records_excluded"] == 0
    assert result["totals"] == dict(requests=50, valid=0, none=50, failed=0, refused=0)
    assert result["clients_without_certificate"] == ["10.0.0.35"]


def test_nothing_in_the_window_is_no_adoption_figure(tmp_path):
    log = write_log(tmp_path / "access.log", NGINX_SUCCESS)
    result = _adoption.count_adoption([log], since="2026-11-28T00:00:00Z")
    assert result["totals"] == dict(requests=0, valid=0, none=0, failed=0, refused=0)
    assert result["adoption"] is None
    assert result["clients"] == [] and result["sites"] == []
    assert result["window"]["first_seen"] is None and result["window"]["last_seen"] is None
    empty = write_log(tmp_path / "empty.log")
    assert _adoption.count_adoption([empty])["adoption"] is None


def test_window_bounds_are_checked():
    with pytest.raises(PkiError, match="since='yesterday' is not an ISO 8601"):
        _adoption.count_adoption(["/nonexistent"], since="yesterday")
    with pytest.raises(PkiError, match=r"since \(2026-11-27T00:00:00Z\) must be before until"):
        _adoption.count_adoption(["/nonexistent"], since="2026-11-27T01:00:00+01:00", until="2026-11-27T00:00:00Z")
    with pytest.raises(PkiError, match="at least one"):
        _adoption.count_adoption([])


def test_missing_files_are_reported_or_fail(tmp_path):
    log = write_log(tmp_path / "access.log", NGINX_SUCCESS)
    missing = str(tmp_path / "haproxy" / "access.log")
    result = _adoption.count_adoption([missing, log, missing], fail_on_missing=False)
    assert result["missing_paths"] == [missing]
    assert result["totals"]["valid"] == 1
    # By default a missing log is no evidence: an error.
    with pytest.raises(PkiError, match="access log %s does not exist: nothing can be observed" % missing):
        _adoption.count_adoption([log, missing])


def test_unreadable_paths_fail(tmp_path):
    with pytest.raises(PkiError, match="is a directory"):
        _adoption.count_adoption([str(tmp_path)])
    if os.geteuid() != 0:  # root reads it anyway
        log = write_log(tmp_path / "access.log", NGINX_SUCCESS)
        os.chmod(log, 0)
        with pytest.raises(PkiError, match="cannot read access log"):
            _adoption.count_adoption([log])


def test_rotated_generation_and_files_named_twice(tmp_path):
    current = write_log(tmp_path / "access.log", NGINX_SUCCESS)
    write_log(tmp_path / "access.log.1", NGINX_NONE, NGINX_FAILED)
    link = tmp_path / "link.log"
    link.symlink_to(current)

    assert _adoption.count_adoption([current])["totals"]["requests"] == 1
    result = _adoption.count_adoption([current, str(link), current + ".1"], include_rotated=True)
    assert result["totals"] == dict(requests=3, valid=1, none=1, failed=1, refused=1)
    assert [f["path"] for f in result["files"]] == [current + ".1", current]
    # A missing rotated generation is not a missing log.
    alone = write_log(tmp_path / "other.log", HAPROXY_NONE)
    assert _adoption.count_adoption([alone], include_rotated=True, fail_on_missing=True)["missing_paths"] == []


def test_invalid_utf8_and_blank_lines(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"\n   \n" + NGINX_SUCCESS.replace("GET /x", "GET /\xff").encode("latin-1") + b"\n\xff\xfe\n")
    result = _adoption.count_adoption([str(path)])
    assert result["totals"]["valid"] == 1
    assert result["lines_skipped"] == 1


def test_the_python_service_access_log_reads_back(tmp_path):
    """Lines written by the role's own AccessLog, handshake refusals included."""
    spec = importlib.util.spec_from_file_location(
        "fleet_mtls_identity", str(REPO / "roles" / "python_service" / "files" / "fleet_mtls_identity.py"))
    identity = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(identity)
    path = str(tmp_path / "access.json")
    log = identity.AccessLog(path, site="inventory")
    cert = {"subject": ((("commonName", "client1"),),), "serialNumber": "5a3f",
            "subjectAltName": (("URI", "spiffe://lab.internal/client/client1"),)}
    log.write("10.0.0.21", identity.describe_peer_certificate(cert), 200, method="GET", path="/")
    log.write("::ffff:10.0.0.35", identity.describe_peer_certificate(None), 200, method="GET", path="/")
    refused = {"verify": "FAILED:certificate has expired", "subject": "", "common_name": "", "spiffe_id": "",
               "serial": ""}
    log.write("10.0.0.36", refused, 0, tls_error="certificate verify failed")

    result = _adoption.count_adoption([path], since=datetime.datetime.now(UTC).replace(microsecond=0).isoformat())
    assert result["totals"] == dict(requests=3, valid=1, none=1, failed=1, refused=1)
    assert [(x["client_addr"], x["identity"]) for x in result["clients"]] == [
        ("10.0.0.21", "spiffe://lab.internal/client/client1"), ("10.0.0.35", ""), ("10.0.0.36", "")]
    assert result["sites"][0]["server"] == "python_service"
    assert result["clients_without_certificate"] == ["10.0.0.35"]
    assert result["clients_with_failed_certificate"] == ["10.0.0.36"]


def test_fields_of_unexpected_types(tmp_path):
    odd = json.loads(NGINX_SUCCESS)
    odd.update(client_addr=["10.0.0.21"], tls_client_subject={"CN": "client1"}, site=None)
    record = _adoption.parse_line(json.dumps(odd), UTC)
    assert (record.outcome, record.site) == ("valid", "")
    odd["time"] = ["2026-11-27T00:22:37+00:00"]
    with pytest.raises(_adoption.InvalidLine, match="no readable time"):
        _adoption.parse_line(json.dumps(odd), UTC)
