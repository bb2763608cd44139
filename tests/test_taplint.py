"""STILTS taplint (the IVOA's TAP validator) against the live service must find no errors.

Every stage runs except LOC: ObsLocTAP is the observation-planning standard (a table
ivoa.obsplan of scheduled observations), which a catalog service does not offer. The full
report goes to test-output/taplint.txt, its summary into the test output.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.system

STILTS = shutil.which("stilts")


@pytest.mark.skipif(STILTS is None, reason="STILTS is not installed (Debian package stilts)")
def test_taplint_finds_no_errors(service, output_dir):
    proc = subprocess.run([STILTS, "taplint", f"tapurl={service.url}/tap", "stages=-LOC", "maxrepeat=20"],
                          capture_output=True, text=True, timeout=600)
    report = proc.stdout + proc.stderr
    (output_dir / "taplint.txt").write_text(report)
    totals = next((line for line in report.splitlines() if line.startswith("Totals:")), None)
    problems = [line for line in report.splitlines() if re.match(r"^[EF]-", line)]
    print(f"\ntaplint {service.url}/tap: {totals}")
    for line in problems[:40]:
        print("  " + line)
    assert totals is not None, report[-2000:]
    counts = dict(re.findall(r"(\w+): (\d+)", totals))
    assert counts["Errors"] == "0" and counts["Failures"] == "0", "\n".join(problems[:40])
