"""Demo generator benchmark: wall time, throughput and peak memory at the default scale and at ~10M touchpoints.

    .venv/bin/python benchmarks/bench_seed.py [--scales 1 25] [--repeat 3]

Prints one line per scale; the goal at the default scale is < 60 s on 2 cores (issue #2).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

from mopsbot.demo.generator import generate

GOAL_DEFAULT_S = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 25.0])
    parser.add_argument("--repeat", type=int, default=3, help="runs at scales <= 1 (median reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for scale in args.scales:
            runs = args.repeat if scale <= 1 else 1
            times = []
            for i in range(runs):
                path = Path(tmp) / f"w{scale}-{i}.duckdb"
                start = time.perf_counter()
                result = generate(path, scale=scale)
                times.append(time.perf_counter() - start)
                size_mb = path.stat().st_size / 1e6
                path.unlink()
            seconds = statistics.median(times)
            touches = result.rows["fct_touchpoint"]
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            line = (
                f"scale {scale:g}: {seconds:.1f} s (median of {runs}), {touches:,} touchpoints, "
                f"{result.rows['dim_lead']:,} leads, {touches / seconds:,.0f} touchpoints/s, "
                f"file {size_mb:.0f} MB, peak RSS so far {peak_mb:,.0f} MB"
            )
            if scale == 1:
                line += f", {seconds / GOAL_DEFAULT_S:.2f}x of the 60 s goal"
            print(line, flush=True)


if __name__ == "__main__":
    main()
