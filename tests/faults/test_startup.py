"""`mopsbot serve` on a data directory that does not exist: a clear refusal, unless asked to initialise it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.faults.conftest import DRAIN_S, Replicas

pytestmark = pytest.mark.faults


def test_a_missing_data_dir_stops_serve_with_a_hint_and_init_starts_it(replicas: Replicas, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "var"
    refused = replicas.start("refused", missing, wait=False)
    try:
        code = refused.wait(60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"serve kept running on a missing data dir:\n{refused.tail()}")
    output = refused.log()
    assert code != 0, output
    assert re.search(r"mopsbot db upgrade|make demo|--init", output), output
    assert "Traceback" not in output, output

    started = replicas.start("init", missing, args=["--init"])
    assert started.get("/livez").status == 200
    assert missing.is_dir()
    started.terminate()
    assert started.wait(DRAIN_S + 10) == 0, started.tail()
