# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""bench/handshake_table.py: the ratios, the servers' CPU per connection and the targets, from result files."""
import importlib.util
import json
import pathlib

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[3] / "bench"


@pytest.fixture(scope="module")
def table_module():
    spec = importlib.util.spec_from_file_location("handshake_table", BENCH / "handshake_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cell(target, tls, resume, mtls, rate, ticks, resumed_share=0.0, errors=0):
    connections = int(rate * 3)
    return {"target": target, "kind": {"tls": tls, "resume": resume, "mtls": mtls},
            "client": {"rate": rate, "connections": connections, "resumed_share": resumed_share,
                       "client_cpu_cores": 0.5, "errors": errors, "last_error": "boom" if errors else "",
                       "statuses": {"200": connections}},
            "server_ticks_before": [1000], "server_ticks": [1000 + ticks]}


@pytest.fixture
def results(tmp_path):
    path = tmp_path / "ec.json"
    path.write_text(json.dumps({"setup": "ec", "results": [
        cell("nginx", "1.2", "none", True, 100, 60),
        cell("nginx", "1.2", "id", True, 500, 30, resumed_share=1.0),
        cell("nginx", "1.2", "ticket", True, 300, 30, resumed_share=0.9),
        cell("nginx", "1.2", "none", False, 200, 18),
        cell("gunicorn", "1.3", "none", True, 100, 300),
        cell("haproxy+gunicorn", "1.3", "none", True, 80, 480, errors=2),
    ]}))
    return path


def test_ratios_targets_and_server_cpu(table_module, results):
    text = table_module.table(table_module.load([str(results)]))
    nginx = next(line for line in text.splitlines() if line.startswith("| nginx "))
    columns = [c.strip() for c in nginx.strip("|").split("|")]
    assert columns[:4] == ["nginx", "ec", "1.2", "100"]
    assert columns[4] == "5.00x ok"                    # resumed by ID: 500/100, target 4x
    assert columns[5] == "3.00x (below 4.0x)"          # by ticket: 300/100
    assert columns[6] == "0.50x (below 0.9x)"          # mTLS full / one-way full: 100/200
    assert columns[7] == "100%, 90%"
    # 60 ticks over 300 connections: 2 ms; 30 over 900 (the ticket cell): 0.3 ms; 18 over 600: 0.3 ms
    assert columns[8] == "2.0, 0.3, 0.3"


def test_proxy_ratio_and_errors(table_module, results):
    text = table_module.table(table_module.load([str(results)]))
    assert "| ec | 1.3 | 80 | 100 | 0.80x ok |" in text
    assert "haproxy+gunicorn ec TLS 1.3 none mTLS: 2 errors (boom)" in text


def test_no_files_is_a_usage_error(table_module, capsys):
    assert table_module.main([]) == 2
    assert "handshake_table.py RESULT.json" in capsys.readouterr().err
