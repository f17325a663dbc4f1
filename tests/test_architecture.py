"""Dependencies between the top-level packages point one way (import-linter contracts in pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("orchestration", "expectations", "ml", "warehouse", "report", "bench", "demo")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_contracts_hold():
    proc = lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_a_cycle_breaks_the_layers_contract(tmp_path):
    """Defect: warehouse imports ml (ml already imports warehouse)."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "warehouse" / "cycle_probe.py").write_text("from ml.segmentation.store import ASSIGNMENTS_TABLE\n")
    proc = lint_imports(tmp_path)
    assert proc.returncode != 0
    assert "warehouse is not allowed to import ml" in proc.stdout


def test_the_report_reading_the_warehouse_breaks_its_contract(tmp_path):
    """Defect: the segment report imports the warehouse's connections (it must read the published copy only)."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "report" / "warehouse_probe.py").write_text("from warehouse.connections import connect\n")
    proc = lint_imports(tmp_path)
    assert proc.returncode != 0
    assert "report is not allowed to import warehouse" in proc.stdout
