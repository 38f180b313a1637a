"""Cold `mas-kg explain` on one patient, in fresh processes, as a ratio to a bare Python start.

Run: python bench/explain_cold.py [N]   (prints medians and the ratio; the machine is noisy,
so the baseline is measured in the same run).
"""

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N = int(sys.argv[1]) if len(sys.argv) > 1 else 5


def timed(args):
    samples = []
    for _ in range(N):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


baseline = timed([sys.executable, "-c", "import json"])
explain = timed([sys.executable, "-m", "kg.cli", "explain", str(ROOT / "examples/patients/sjia-mas.json")])
print(f"python start (baseline): {baseline:.3f} s")
print(f"mas-kg explain, cold process, cached ontology: {explain:.3f} s  (ratio {explain / baseline:.1f}x)")
