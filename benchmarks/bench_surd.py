"""Time exact SURD on 10^6 samples of 4 agents (plus the target), the size of a long stream study.

Run:  python benchmarks/bench_surd.py [--samples 1000000] [--agents 4] [--bins 10] [--repeat 3]
Prints the best wall time over the repeats for equal-width and quantile binning.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.signal import lfilter

from redheart.analysis import surd
from redheart.pipelines.precision import machine_info, machine_line


def _signals(n: int, n_agents: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Agents are AR(1) series; the target mixes two of them, their product and noise, one step later."""
    rng = np.random.default_rng(seed)
    agents = lfilter([1.0], [1.0, -0.8], rng.normal(size=(n, n_agents)), axis=0)
    target = np.empty(n)
    target[1:] = agents[:-1, 0] + 0.5 * agents[:-1, 1] * agents[:-1, -1] + rng.normal(size=n - 1)
    target[0] = 0.0
    return target, agents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--bins", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    target, agents = _signals(args.samples, args.agents)
    print(machine_line(machine_info("float64 (numpy)")))
    print(f"SURD: {args.samples:,} samples, {args.agents} agents, {args.bins} bins per variable, lag 1")
    for binning in ("equal", "quantile"):
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            res = surd(target, agents, lags=1, bins=args.bins, binning=binning)
            times.append(time.perf_counter() - start)
        shares = ", ".join(f"{k} {v:.3f}" for k, v in res.shares().items())
        print(f"  binning={binning:<8} best {min(times):.3f} s (of {args.repeat})   shares: {shares}")


if __name__ == "__main__":
    main()
