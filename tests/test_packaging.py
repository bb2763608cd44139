"""Dockerfile, Binder and the Nix flake: checked statically (no Docker engine or Nix store here),
and the install steps they share with `make up` run for real."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[1]
INSTALL = "appliance/install.sh"


def test_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).with_name("hadolint")
    proc = subprocess.run([str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr


def test_flake_parses():
    nix = shutil.which("nix-instantiate")
    assert nix, "nix-instantiate is missing: appliance/apt-packages-test.txt lists nix-bin"
    proc = subprocess.run([nix, "--parse", str(ROOT / "flake.nix")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "postgresql_15" in proc.stdout and "q3c" in proc.stdout and "pgsphere" in proc.stdout


@pytest.mark.parametrize("path", ["Dockerfile", "binder/postBuild", "flake.nix", "Makefile"])
def test_every_image_runs_the_shared_install_steps(path):
    text = (ROOT / path).read_text()
    assert INSTALL in text, f"{path} does not call {INSTALL}"
    # and none of them installs Python packages or apt packages on its own
    assert "pip install" not in text and "apt-get install" not in text


def test_binder_apt_list_matches_the_appliance():
    def packages(path):
        lines = [l.strip() for l in (ROOT / path).read_text().splitlines()]
        return {re.sub(r"postgresql-\d+", "postgresql-N", l) for l in lines if l and not l.startswith("#")}

    assert packages("binder/apt.txt") == packages("appliance/apt-packages.txt")
    for script in ("binder/postBuild", "binder/start", INSTALL):
        assert (ROOT / script).stat().st_mode & 0o111, f"{script} is not executable"


def test_install_is_idempotent_and_quick():
    """After `make test` installed everything, a second run does no work."""
    t0 = time.perf_counter()
    proc = subprocess.run([str(ROOT / INSTALL), "--test"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "installing" not in proc.stdout, proc.stdout
    assert time.perf_counter() - t0 < 10


def test_install_into_a_fresh_environment(tmp_path):
    """The Binder/image path (--no-apt --no-venv) into a brand-new interpreter environment."""
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    proc = subprocess.run([str(ROOT / INSTALL), "--no-apt", "--no-venv"], capture_output=True, text=True,
                          cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHON": str(python), "HOME": str(tmp_path)},
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    help_text = subprocess.run([str(env_dir / "bin" / "starbox"), "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "catalog" in help_text.stdout
    again = subprocess.run([str(ROOT / INSTALL), "--no-apt", "--no-venv"], capture_output=True, text=True,
                           cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHON": str(python), "HOME": str(tmp_path)})
    assert again.returncode == 0 and "installing" not in again.stdout


def test_unknown_install_option_is_refused():
    proc = subprocess.run([str(ROOT / INSTALL), "--bogus"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "unknown option --bogus" in proc.stderr
