"""schemathesis (PyPI) against the admin API's own OpenAPI document: generated requests, valid
and invalid, through every operation and in stateful sequences. No response may be a 5xx or
break the document (status codes, content types, headers, schemas), and invalid input must be
refused. The one check left out is `positive_data_acceptance`: the document cannot say every
rule (that a URL parses, that a time is a time), so some schema-valid requests are rightly
refused with 400."""

from __future__ import annotations

import re
import subprocess

from conftest import ARTIFACTS, python


def test_the_admin_api_keeps_to_its_openapi_document(gatehouse):
    gatehouse.cli("users", "add", "--email", "root@example.com", "--admin")
    key = gatehouse.cli("api-keys", "create", "--user", "root@example.com", "--name", "schemathesis")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    report = ARTIFACTS / "schemathesis.txt"
    run = subprocess.run(
        [
            python(), "-m", "schemathesis.cli", "run", f"{gatehouse.url}/admin/api/v1/openapi.json",
            "--header", f"Authorization: Bearer {key['secret']}",
            "--checks", "all",
            "--exclude-checks", "positive_data_acceptance",
            "--max-examples", "60",
            "--seed", "20261123",
            "--workers", "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        # schemathesis keeps a cache in its working directory: keep it out of the checkout.
        cwd=ARTIFACTS,
    )
    report.write_text(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    # Every operation of the document was exercised.
    selected = re.search(r"Selected: (\d+)/(\d+)", run.stdout)
    tested = re.search(r"Tested: (\d+)", run.stdout)
    assert selected and tested, run.stdout[-2000:]
    assert selected.group(1) == selected.group(2) == tested.group(1), run.stdout[-2000:]
