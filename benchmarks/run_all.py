"""Run every benchmark in turn; each prints its own ratios against a baseline of the same run."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for script in ["features_speed.py", "bench_synthetic.py", "bench_deep.py", "study_wall_time.py"]:
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script)], check=True)
