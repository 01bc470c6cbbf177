"""The distributed executor is a client of the workers, not one of them."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_distributed_executor_and_the_api_loads_nothing_of_worker() -> None:
    # A fresh interpreter: this test process has imported worker already.
    code = (
        "import sys, ttsbatch.executors.distributed, scheduler.api.app;"
        " print(sorted(m for m in sys.modules if m.split('.')[0] == 'worker'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
