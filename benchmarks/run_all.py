"""Run every benchmark in turn; each prints its own ratios against a baseline of the same run."""

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
for script in ["features_speed.py", "bench_synthetic.py", "bench_deep.py"]:
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script)], check=True)
# The default study up to features, then the ICC raters' cost on its patients.
workdir = tempfile.mkdtemp(prefix="study-bench-")
for script, args in [("study_wall_time.py", ["--workdir", workdir]), ("robustness_cost.py", [workdir])]:
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *args], check=True)
