# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The adoption_info module end to end: arguments in, the JSON it exits with out."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.fleet.mtls.plugins.modules import adoption_info

NGINX_SUCCESS = (
    '{"time":"2026-11-27T00:22:37+00:00","server":"nginx","site":"api","client_addr":"10.0.0.21",'
    '"tls_client_verify":"SUCCESS","tls_client_subject":"CN=client1,O=Example",'
    '"tls_client_serial":"681C0ECA15D578FCB168C90BBC4A9607F517346C","tls_client_spiffe_id":"",'
    '"tls_client_fingerprint":"a340b84b8ffd16d71c4aeb6e9c05b5b16de17bf0","tls_protocol":"TLSv1.3",'
    '"host":"api.lab.internal","request":"GET / HTTP/1.1","status":200,"bytes_sent":3,"request_time":0.000}')
HAPROXY_NONE = (
    '{"time":"2026-11-27T00:23:00Z","server":"haproxy","site":"permissive","client_addr":"10.0.0.35",'
    '"client_port":55654,"tls_client_verify":"NONE","tls_client_subject":"","tls_client_serial":"",'
    '"tls_client_fingerprint":"","tls_client_spiffe_id":"","tls_version":"TLSv1.3","status":200,"method":"GET",'
    '"uri":"/","backend":"app","backend_server":"app1","duration_ms":3,"bytes":152}')


MODULE = adoption_info


@pytest.fixture
def logs(tmp_path):
    nginx = tmp_path / "fleet-mtls-access.log"
    nginx.write_text(NGINX_SUCCESS + "\n")
    haproxy = tmp_path / "access.log"
    haproxy.write_text(HAPROXY_NONE + "\nProxy permissive stopped (cumulated conns: FE: 2, BE: 0).\n")
    return str(nginx), str(haproxy), str(tmp_path / "absent.json")


@pytest.mark.parametrize("check_mode", [False, True])
def test_result(run_module, logs, check_mode):
    nginx, haproxy, absent = logs
    result = run_module(dict(paths=[nginx, haproxy, absent], since="2026-11-27T00:00:00Z", fail_on_missing=False),
                        check_mode=check_mode)
    assert result["changed"] is False and not result.get("failed")
    assert result["totals"] == dict(requests=2, valid=1, none=1, failed=0, refused=0)
    assert result["adoption"] == 0.5
    assert result["clients_without_certificate"] == ["10.0.0.35"]
    assert result["clients_with_failed_certificate"] == []
    assert [(c["client_addr"], c["identity"]) for c in result["clients"]] == [
        ("10.0.0.21", "CN=client1,O=Example"), ("10.0.0.35", "")]
    assert result["missing_paths"] == [absent]
    assert result["lines_skipped"] == 1 and result["records_outside_window"] == 0
    assert result["window"] == dict(since="2026-11-27T00:00:00Z", until=None, first_seen="2026-11-27T00:22:37Z",
                                    last_seen="2026-11-27T00:23:00Z")
    assert [s["site"] for s in result["sites"]] == ["api", "permissive"]


def test_every_documented_return_key_is_returned(run_module, logs):
    documented = set(yaml.safe_load(adoption_info.RETURN))
    result = run_module(dict(paths=list(logs[:2])))
    assert documented <= set(result)
    assert set(result) - documented <= {"changed", "invocation"}


def test_no_traffic(run_module, logs):
    result = run_module(dict(paths=[logs[0]], until="2026-11-27T00:00:00Z"))
    assert result["totals"]["requests"] == 0 and result["adoption"] is None
    assert result["records_outside_window"] == 1


def test_failures(run_module, logs):
    nginx, _haproxy, absent = logs
    result = run_module(dict(paths=[nginx, absent]))
    assert result["failed"] and result["msg"].startswith("access log %s does not exist" % absent)
    result = run_module(dict(paths=[nginx], since="last tuesday"))
    assert result["failed"] and "since='last tuesday' is not an ISO 8601" in result["msg"]
    result = run_module(dict(since="2026-11-27T00:00:00Z"))
    assert result["failed"] and "paths" in result["msg"]


def test_the_probe_token_is_a_secret(run_module, logs):
    nginx, haproxy, _absent = logs
    result = run_module(dict(paths=[nginx, haproxy], probe_token="s3cret-token-of-the-fleet"))
    assert not result.get("failed")
    assert "s3cret-token-of-the-fleet" not in repr(result)


def test_a_broken_line_fails_naming_file_and_line(run_module, tmp_path):
    log = tmp_path / "access.log"
    log.write_text(NGINX_SUCCESS + "\n" + NGINX_SUCCESS[:60] + "\n")
    result = run_module(dict(paths=[str(log)]))
    assert result["failed"] and result["msg"].startswith("access log %s, line 2: not JSON" % log)


# Where cryptography cannot be imported at all: adoption_info reads logs and runs; a module that reads keys
# fails naming the library. In a fresh interpreter, so that nothing here has imported cryptography before.
WITHOUT_CRYPTOGRAPHY = r"""
import json, sys
sys.modules["cryptography"] = None  # import cryptography now raises ImportError
from ansible.module_utils.testing import patch_module_args
from ansible_collections.fleet.mtls.plugins.modules import adoption_info, private_key
for module, args in ((adoption_info, dict(paths=[sys.argv[1]], fail_on_missing=True)),
                     (private_key, dict(path=sys.argv[2]))):
    with patch_module_args(args):
        try:
            module.main()
        except SystemExit:
            pass
"""


def test_adoption_info_needs_no_cryptography(tmp_path):
    log = tmp_path / "access.log"
    log.write_text(NGINX_SUCCESS + "\n" + HAPROXY_NONE + "\n")
    key = tmp_path / "server.key"
    done = subprocess.run([sys.executable, "-c", WITHOUT_CRYPTOGRAPHY, str(log), str(key)],
                          capture_output=True, text=True, check=False, env=dict(os.environ))
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(results) == 2, done.stdout + done.stderr
    counted, refused = results
    assert not counted.get("failed") and counted["totals"]["requests"] == 2, counted
    assert refused["failed"] and "cryptography" in refused["msg"], refused
    assert not key.exists()
