"""The rules' conda environment lists exactly the pins of requirements.txt."""

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_rule_environment_is_generated_from_requirements():
    done = subprocess.run([sys.executable, "workflow/envs/write_env.py", "--check"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    env = yaml.safe_load((REPO / "workflow/envs/synthshare.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    requirements = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()]
    assert pip == [line for line in requirements if line]
    assert "python=3.11" in env["dependencies"]

