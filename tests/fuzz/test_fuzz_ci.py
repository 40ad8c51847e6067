"""A short fixed-seed differential fuzzing campaign: zero mismatches, crashes and refusals.

Runs in a subprocess: the campaign turns on JAX's (process-global) compilation cache to share XLA
executables between programs, and imports a hundred throw-away modules; neither should leak into the
rest of the test session. About a second a program on a 2-core CPU ("ci" profile: small programs,
four inputs of one batch size). Failures are not shrunk or saved here; rerun
``python -m tests.fuzz.campaign --profile ci --programs 100 --seed 20240`` to shrink and save them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROGRAMS = 100
SEED = 20240
ROOT = Path(__file__).resolve().parents[2]


def test_fuzz_campaign_ci(tmp_path: Path) -> None:
    cmd = [
        sys.executable, "-m", "tests.fuzz.campaign",
        "--programs", str(PROGRAMS), "--seed", str(SEED), "--profile", "ci",
        "--no-shrink", "--no-save", "--jax-cache", str(tmp_path / "xla"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-4000:]
    last = lines[-1]
    report = proc.stdout[-6000:] + proc.stderr[-2000:]
    assert last.startswith(f"fuzz: {PROGRAMS} programs, "), report
    assert last.endswith(" 0 mismatches, 0 crashes"), report
    assert proc.returncode == 0, report
    assert "produced an invalid program" not in proc.stdout, (
        report
    )  # the generator itself must stay valid
    paths = int(last.split(", ")[1].split()[0])
    assert paths >= PROGRAMS, f"too little path mixing: {last}"
