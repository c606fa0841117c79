"""The wheel: license metadata without warnings, and the demo config, data and labeling page inside the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_runs_the_demo_config_without_the_repository(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, symlinks=True,
                    ignore=shutil.ignore_patterns(".git", ".venv", ".ls-venv", "runs", "build", "dist", "*.egg-info", "__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w",
                            str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    assert "is deprecated" not in built.stdout + built.stderr  # e.g. `project.license` as a TOML table
    (wheel,) = (tmp_path / "dist").glob("lit_al-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "lit_al/configs/demo.yaml" in names and "lit_al/datasets/trec/train.csv" in names
    assert {f"lit_al/annotate/static/{name}" for name in ("index.html", "app.js", "style.css")} <= set(names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "License-Expression: MIT" in metadata and any(n.endswith("licenses/LICENSE") for n in names)

    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    probe = ("import sys; from lit_al.cli import main; import lit_al; "
             "assert lit_al.__file__.startswith(sys.argv[1]), lit_al.__file__; "
             "sys.exit(main(['fit', '-c', 'builtin:demo.yaml', '--print_config']))")
    env = dict(os.environ, PYTHONPATH=str(target), OMP_NUM_THREADS="1")
    printed = subprocess.run([sys.executable, "-c", probe, str(target)], capture_output=True, text=True,
                             env=env, cwd=tmp_path, timeout=300)
    assert printed.returncode == 0, printed.stderr
    assert "train: builtin:trec/train.csv" in printed.stdout
    loads = ("from lit_al.data import ActiveDataModule; d = ActiveDataModule(train='builtin:trec/train.csv'); "
             "d.load(); print(len(d.pool))")
    pool = subprocess.run([sys.executable, "-c", loads], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert pool.stdout.strip() == "4674", pool.stderr
