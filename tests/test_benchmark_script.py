import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_benchmark_writes_both_reports(tmp_path):
    report = tmp_path / "BENCHMARKS.md"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--quick", "--repeats", "1", "--output", str(report)],
        check=True, capture_output=True, timeout=1200,
    )
    results = json.loads(report.with_suffix(".json").read_text())
    assert results["scoring"]["score_rows_per_s"] > 0 and results["scoring"]["predict_rows_per_s"] > 0
    assert results["training"]["ratio"] > 0
    assert len(results["scoring"]["peak_memory"]) == 2
    text = report.read_text()
    assert "textpipe score" in text and "ratio" in text
