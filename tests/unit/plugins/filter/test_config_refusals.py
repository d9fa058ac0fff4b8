# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""config_refusals: no value a role renders into a server configuration or a unit can change its meaning.

The cases are the audit's: each passed argument_specs, and nginx -t or
haproxy -c accepted the result with a changed meaning.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.mtls.plugins.filter.validate import KINDS, config_refusals

NGINX_SITES = [{"name": "name", "server_name": ["host", "or_one"], "listen": "listen",
                "upstream": {"url": "url", "host_header": "header", "tls_name": "host"},
                "allowed_common_names": "identity", "crl": "path"}]
HAPROXY_FRONTENDS = [{"name": "name", "address": "address", "port": "port", "allowed_cns": "identity"}]
HAPROXY_BACKENDS = [{"name": "name", "servers": [{"name": "name", "address": "address", "port": "port"}]}]


def refusals(variable, value, schema):
    return config_refusals({variable: value}, {variable: schema})


@pytest.mark.parametrize("site,field,character", [
    # ';' in server_name: trusts the public CAs for client certificates
    ({"name": "web", "server_name": "web1; ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt"},
     "server_name", ";"),
    # a return before the allow-list check
    ({"name": "web", "server_name": "x; return 200 bypass"}, "server_name", ";"),
    # a newline in the name: a plain-HTTP server {}
    ({"name": "web\n}\nserver { listen 80; location / { return 200; } }\n#", "server_name": "web1"}, "name", "\n"),
    # a spoofed identity header to the upstream
    ({"name": "web", "server_name": "web1",
      "upstream": {"url": "https://127.0.0.1:8444", "host_header": "web1;\n proxy_set_header X-Client-Verify SUCCESS"}},
     "upstream.host_header", ";"),
    ({"name": "web", "server_name": "web1", "upstream": {"url": "https://app1:8443/ x"}}, "upstream.url", " "),
    ({"name": "web", "server_name": "web1", "crl": "/etc/fleet-mtls/../../tmp/crl.pem"}, "crl", ".."),
    ({"name": "web", "server_name": "web1", "allowed_common_names": ["client1\"; allow all"]},
     "allowed_common_names", "not a name the CA issues"),
])
def test_nginx_injections_are_refused_naming_the_variable_and_the_character(site, field, character):
    found = refusals("mtls_nginx_sites", [site], NGINX_SITES)
    assert len(found) == 1, found
    assert found[0].startswith("mtls_nginx_sites[0].%s" % field)
    assert repr(character) in found[0] or character in found[0]


@pytest.mark.parametrize("variable,value,schema,where", [
    # a newline in a bind address: a second bind with verify none
    ("mtls_haproxy_frontends", [{"name": "api", "address": "10.0.0.1:443 ssl crt x\n    bind :8443 verify none"}],
     HAPROXY_FRONTENDS, "mtls_haproxy_frontends[0].address"),
    # a '#' comments out the rest of the server line, verify required included
    ("mtls_haproxy_backends", [{"name": "app", "servers": [{"name": "a", "address": "app1 #"}]}],
     HAPROXY_BACKENDS, "mtls_haproxy_backends[0].servers[0].address"),
    # HAProxy expands $VAR inside double quotes
    ("mtls_haproxy_frontends", [{"name": "api", "allowed_cns": ["${HOME}"]}], HAPROXY_FRONTENDS,
     "mtls_haproxy_frontends[0].allowed_cns"),
    ("mtls_haproxy_frontends", [{"name": "api", "port": "443 ssl"}], HAPROXY_FRONTENDS,
     "mtls_haproxy_frontends[0].port"),
    # a newline in the service name: ExecStartPre= and User=root in the unit
    ("mtls_python_service_name", "app\nExecStartPre=/bin/sh -c id\nUser=root", "name", "mtls_python_service_name"),
    ("mtls_python_service_user", "root\nUser=root", "user", "mtls_python_service_user"),
    ("mtls_python_service_access_log", "/var/log/app/access.json\nExecStart=/bin/true", "path",
     "mtls_python_service_access_log"),
])
def test_haproxy_and_unit_injections_are_refused(variable, value, schema, where):
    found = refusals(variable, value, schema)
    assert len(found) == 1 and found[0].startswith(where), found


@pytest.mark.parametrize("kind,value", [
    ("name", "web"), ("name", "fleet-mtls-app"), ("host", "web1"), ("host", "*.example.com"), ("host", "_"),
    ("address", "10.0.0.1"), ("address", "app1"), ("address", "[::1]"), ("address", "::"),
    ("listen", 443), ("listen", "10.0.0.1:443"), ("listen", "[::]:443"),
    ("path", "/etc/fleet-mtls/certs/ca-bundle.pem"), ("path", "/var/log/nginx/fleet-mtls-access.log"),
    ("url", "https://127.0.0.1:8444"), ("url", "http://app1:8080/api/v1"), ("url", "https://[::1]:8443/"),
    ("header", "$host"), ("header", "web1.example.com:8443"), ("word", "TLSv1.3"),
    ("word", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"), ("user", "fleet-mtls-app"),
    ("duration", "10m"), ("duration", 300), ("number", 3), ("port", 8443), ("port", "443"),
    ("number 1-256", 1), ("number 1-256", "256"), ("number 0-300", 0), ("number 0-300", 300),
])
def test_ordinary_values_pass(kind, value):
    assert refusals("v", value, kind) == []


@pytest.mark.parametrize("kind,value", [
    ("port", 0), ("port", 65536), ("port", True), ("number", "3; x"), ("path", "relative/path"),
    ("url", "https://user:pw@app1/"), ("url", "https://app1/?q=1"), ("url", "file:///etc/passwd"),
    ("name", "../outside/pwn"), ("name", ".."), ("host", "a b"), ("duration", "10m;"), ("user", "Root"),
    ("name", ["a"]), ("path", {"a": 1}),
    ("number 1-256", 0), ("number 1-256", 257), ("number 0-300", -1), ("number 0-300", "2\nthreads = 64"),
    ("number 0-300", 2.5), ("number 0-300", True), ("number 0-300", "two"), ("number 1-256", [2]),
])
def test_bad_values_are_refused(kind, value):
    assert len(refusals("v", value, kind)) == 1


@pytest.mark.parametrize("kind,value", [
    ("path", "/"), ("path", "/etc/"), ("path", "/a/b/c"), ("path", "/a/b/c/"),
])
def test_paths_with_and_without_a_trailing_slash_pass(kind, value):
    assert refusals("v", value, kind) == []


@pytest.mark.parametrize("value", ["//etc", "/etc//x", "/etc/../x", "/a b", "/" + "a" * 300 + "/..",
                                   "/" + "a" * 300 + "#"])
def test_paths_with_an_empty_or_parent_segment_or_a_bad_character_are_refused(value):
    assert len(refusals("v", value, "path")) == 1


def test_refusing_a_long_value_takes_one_reading_of_it():
    # The audit's injection into a unit: a path of many long segments, refused for one character at the end.
    # A pattern with nested repetition ("(?:[...]+/?)*") tries every way to cut each segment before it gives
    # up (2**(length - 1) per segment): this one would never return. In a child process, so that such a
    # regression fails here (after 120 s, far beyond the milliseconds it takes) instead of hanging the run.
    script = textwrap.dedent("""
        from ansible_collections.fleet.mtls.plugins.filter.validate import KINDS, config_refusals
        for kind, (pattern, allowed, what) in KINDS.items():
            run = "".join(c for c in allowed if c.isalnum())[:8] * 8
            for value in ("/".join([run] * 8) + "#", run * 8 + "#", "https://" + run + "/" + run + "#"):
                assert len(config_refusals({"v": value}, {"v": kind})) == 1, (kind, value)
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False,
                          env=dict(os.environ))
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_no_kind_but_header_admits_a_dollar_and_none_admits_syntax():
    for kind, (pattern, allowed, _what) in KINDS.items():
        assert not set(allowed) & set(" \t\r\n\"';{}#\\"), kind
        if kind != "header":
            assert "$" not in allowed, kind


def test_a_list_or_one_value_and_absent_fields():
    assert refusals("s", "web1", ["host", "or_one"]) == []
    assert refusals("s", ["web1", "a;b"], ["host", "or_one"])[0].startswith("s[1]:")
    assert config_refusals({}, {"absent": "path"}) == []
    assert refusals("s", [{"name": "web"}], NGINX_SITES) == []


def test_a_range_names_its_bounds():
    assert refusals("mtls_python_service_keepalive", 301, "number 0-300") == [
        "mtls_python_service_keepalive: 301 is not a whole number (0 to 300)"]
    assert refusals("p", 0, "port") == ["p: 0 is not a port (1 to 65535)"]


def test_a_bad_schema_is_an_error():
    with pytest.raises(AnsibleFilterError, match="unknown kind"):
        refusals("v", "x", "nope")
    with pytest.raises(AnsibleFilterError, match="unknown kind"):
        refusals("v", 1, "number 1-")
    with pytest.raises(AnsibleFilterError, match="must be dicts"):
        config_refusals([], {})
