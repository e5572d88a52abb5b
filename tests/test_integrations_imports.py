"""Importing cec or cec.integrations imports no harness; each harness module imports only its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HARNESSES = ("lm_eval", "evaluate", "torchmetrics", "inspect_ai", "pytorch_lightning")


def _imported_after(code: str) -> list[str]:
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps([m for m in {HARNESSES!r} if m in sys.modules]))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("code", "allowed"),
    [
        ("import cec, cec.integrations; cec.integrations.EVALUATE_SCRIPT", set()),
        ("import cec.integrations.lm_eval", set()),  # lm-eval loads us, not the other way
    ],
)
def test_no_harness_is_imported(code, allowed):
    assert set(_imported_after(code)) <= allowed


def test_evaluate_script_is_a_file_in_the_package():
    import cec.integrations

    script = Path(cec.integrations.EVALUATE_SCRIPT)
    assert script.is_file() and script.parent == ROOT / "cec" / "integrations"
    # evaluate's dependency check reads one module per import line
    imports = [ln for ln in script.read_text().splitlines() if ln.startswith("import ")]
    assert imports and all("," not in ln for ln in imports)
