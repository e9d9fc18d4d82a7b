"""Load and fault test of the REST server on localhost: throughput, latency, overload, disconnects, a restart.

``python benchmarks/bench_serving.py [--model DIR] [--clients 8] [--seconds 10] [--json OUT]``

A real server process (``python -m redheart.serving``; default model: a tiny system built with
``redheart.encoders.testing.build_tiny_system``) is started by this script, and every request carries its own
``X-Request-ID``; the server's request log (one ``start`` and one ``end`` line per id) is the ledger the
phases are checked against:

1. **steady**: ``--clients`` concurrent clients send one text each, back to back, for ``--seconds``:
   throughput, p50/p95/p99 latency, errors;
2. **overload**: ``--overload-clients`` clients send ``--overload-texts`` texts each, more than the server
   admits (``--capacity`` pending texts): 503s with ``Retry-After``, the server stays up, and its memory
   (RSS) after the phase is compared with the baseline before it;
3. **disconnect**: a client sends a request and closes its connection before the answer: the server still
   finishes it exactly once (its log shows one start and one end) and keeps serving;
4. **restart**: clients send for ``--seconds / 2``, the server gets SIGTERM (it drains what it accepted), a
   new server starts on the same port, and the clients go on for ``--seconds / 2`` against it: every
   request the server accepted got exactly one answer, none is lost or duplicated, and the clients saw a
   clear connection error for the ones sent while it was down.

Prints the figures under the machine line every benchmark prints (``redheart.pipelines.precision.machine_line``:
CPU capability, torch, threads), with the backend and dtype the server computes in as its ``/v1/model`` reports
them (the serving layer loads with ``dtype="auto"``: the fastest dtype this machine runs natively).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from redheart.pipelines.precision import machine_info, machine_line

EN = "I lied to my friend, but it spared her feelings."
KO = "친구와의 약속을 어기고 야근을 했다, 하지만 팀을 도왔다"
_ids = itertools.count()


def next_id(phase: str) -> str:
    return f"{phase}-{next(_ids)}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (Linux /proc, else psutil)."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class Server:
    """``python -m redheart.serving`` in a subprocess, with its request log."""

    def __init__(self, model: str, port: int, log: Path, capacity: int, output: Path) -> None:
        self.model, self.port, self.log, self.capacity, self.output = model, port, log, capacity, output
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 180.0) -> float:
        command = [
            sys.executable,
            "-m",
            "redheart.serving",
            "--model",
            self.model,
            "--port",
            str(self.port),
            "--request-log",
            str(self.log),
            "--max-pending-texts",
            str(self.capacity),
            "--retry-after",
            "1",
            "--log-level",
            "warning",
        ]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        started = time.perf_counter()
        with open(self.output, "a") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}; see {self.output}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"the server was not ready within {timeout_s} s; see {self.output}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self, timeout_s: float = 60.0) -> float:
        """SIGTERM (graceful: drains in-flight requests); returns the seconds until it exited."""
        assert self.process is not None
        started = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout_s)
        return time.perf_counter() - started


class Ledger:
    """What the clients saw, per request id."""

    def __init__(self) -> None:
        self.outcomes: dict[str, list[tuple[str, Any]]] = {}
        self.latencies: dict[str, list[float]] = {}

    def record(self, phase: str, request_id: str, outcome: tuple[str, Any], seconds: float | None) -> None:
        self.outcomes.setdefault(request_id, []).append(outcome)
        if seconds is not None and outcome == ("status", 200):
            self.latencies.setdefault(phase, []).append(seconds)

    def phase(self, phase: str) -> dict[str, list[tuple[str, Any]]]:
        return {k: v for k, v in self.outcomes.items() if k.startswith(phase + "-")}


async def client_loop(
    http: httpx.AsyncClient,
    ledger: Ledger,
    phase: str,
    stop_at: list[float],
    texts: int,
    retry_after: list[str] | None = None,
) -> None:
    """Send requests back to back until ``stop_at[0]`` (a list, so the phase may extend it)."""
    body_texts = [f"{EN} ({i})" if i % 2 else f"{KO} ({i})" for i in range(texts)]
    while time.monotonic() < stop_at[0]:
        request_id = next_id(phase)
        body = {"text": body_texts[0]} if texts == 1 else {"texts": body_texts}
        started = time.perf_counter()
        try:
            response = await http.post("/v1/analyze", json=body, headers={"X-Request-ID": request_id})
        except httpx.TransportError as err:
            ledger.record(phase, request_id, ("connection_error", type(err).__name__), None)
            await asyncio.sleep(0.25)
            continue
        seconds = time.perf_counter() - started
        echoed = response.headers.get("x-request-id")
        if echoed != request_id:
            ledger.record(phase, request_id, ("wrong_id", echoed), None)
            continue
        ledger.record(phase, request_id, ("status", response.status_code), seconds)
        if response.status_code == 503:
            if retry_after is not None:
                retry_after.append(response.headers.get("retry-after", ""))
            await asyncio.sleep(float(response.headers.get("retry-after", "1")) / 10)  # impatient clients


def run_clients(
    url: str, ledger: Ledger, phase: str, clients: int, seconds: float, texts: int, **kw: Any
) -> float:
    async def main() -> float:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
            started = time.perf_counter()
            stop_at = [time.monotonic() + seconds]
            await asyncio.gather(
                *(client_loop(http, ledger, phase, stop_at, texts, **kw) for _ in range(clients))
            )
            return time.perf_counter() - started

    return asyncio.run(main())


def server_log(path: Path) -> dict[str, list[dict]]:
    entries: dict[str, list[dict]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            entries.setdefault(entry["id"], []).append(entry)
    return entries


def reconcile(ledger: Ledger, log: dict[str, list[dict]], phase: str) -> dict[str, int]:
    """Compare what the clients saw with the server's ledger: lost, duplicated and unexplained requests."""
    seen = ledger.phase(phase)
    accepted = {k: v for k, v in log.items() if k.startswith(phase + "-")}
    counts: Counter = Counter()
    for request_id, events in accepted.items():
        starts = sum(e["event"] == "start" for e in events)
        ends = [e for e in events if e["event"] == "end"]
        counts["accepted"] += 1
        counts["duplicated_on_server"] += starts > 1 or len(ends) > 1
        counts["lost_on_server"] += starts == 1 and not ends
        client = seen.get(request_id, [])
        counts["answered_but_not_seen_by_client"] += bool(ends) and not any(o[0] == "status" for o in client)
    for request_id, outcomes in seen.items():
        counts["sent"] += 1
        counts["duplicated_at_client"] += len(outcomes) > 1
        if outcomes[0][0] == "status":
            counts["answered"] += 1
            counts["answer_without_server_record"] += request_id not in accepted
        elif outcomes[0][0] == "connection_error":
            counts["connection_errors"] += 1
            counts["accepted_but_connection_error"] += request_id in accepted
        else:
            counts["wrong_id"] += 1
    return dict(counts)


def statuses(ledger: Ledger, phase: str) -> dict[str, int]:
    return dict(Counter(str(o[0][1]) for o in ledger.phase(phase).values()))


def latency_row(ledger: Ledger, phase: str, seconds: float, texts: int) -> dict[str, float]:
    latencies = ledger.latencies.get(phase, [])
    ok = len(latencies)
    return {
        "requests_ok": ok,
        "requests_per_s": ok / seconds,
        "texts_per_s": ok * texts / seconds,
        "p50_ms": 1000 * percentile(latencies, 0.50),
        "p95_ms": 1000 * percentile(latencies, 0.95),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "mean_ms": 1000 * statistics.fmean(latencies) if latencies else float("nan"),
    }


def disconnect_mid_request(server: Server, request_id: str) -> None:
    """Send a request whose answer takes a while, then close the socket before reading anything."""
    body = json.dumps({"texts": [" ".join([EN] * 12) + f" {i}" for i in range(4)]}).encode()
    head = (
        f"POST /v1/analyze HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"X-Request-ID: {request_id}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head + body)
        time.sleep(0.05)
    # closed: the server finds out when it tries to answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", default=None, help="model folder or Hub id (default: a tiny system built here)"
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the steady and restart phases")
    parser.add_argument("--capacity", type=int, default=32, help="the server's max_pending_texts")
    parser.add_argument("--overload-clients", type=int, default=24)
    parser.add_argument(
        "--overload-texts", type=int, default=8, help="texts per request in the overload phase"
    )
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    model = args.model
    if model is None:
        from redheart.encoders.testing import build_tiny_system

        model = str(build_tiny_system(work / "tiny", max_length=48))
    log, output = work / "requests.jsonl", work / "server.log"
    server = Server(model, free_port(), log, args.capacity, output)
    figures: dict[str, Any] = {
        "meta": {"model": model, "clients": args.clients, "seconds": args.seconds, "capacity": args.capacity}
    }
    print(f"model: {model}\nserver output: {output}\nrequest log: {log}")
    ledger = Ledger()
    try:
        figures["startup_s"] = server.start()
        served = httpx.get(server.url + "/v1/model", timeout=30).json()["model"]
        figures["meta"].update(machine_info(served["dtype"], served["device"]), backend=served["backend"])
        print(machine_line(figures["meta"]) + f" | server backend {served['backend']}")
        run_clients(server.url, ledger, "warmup", 2, 3.0, 1)
        baseline = rss_mb(server.process.pid)

        # 1. steady load
        seconds = run_clients(server.url, ledger, "steady", args.clients, args.seconds, 1)
        figures["steady"] = {
            **latency_row(ledger, "steady", seconds, 1),
            "statuses": statuses(ledger, "steady"),
        }
        stages = httpx.get(server.url + "/v1/monitor", timeout=30).json()["stages"]
        figures["stages"] = {k: v for k, v in stages.items() if not k.startswith("encoder:")}

        # 2. overload
        peak = [baseline]

        async def sample_memory(stop: asyncio.Event) -> None:
            while not stop.is_set():
                peak.append(rss_mb(server.process.pid))
                await asyncio.sleep(0.1)

        retry_after: list[str] = []

        async def overload() -> float:
            stop = asyncio.Event()
            sampler = asyncio.create_task(sample_memory(stop))
            limits = httpx.Limits(max_connections=args.overload_clients)
            async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as http:
                started = time.perf_counter()
                stop_at = [time.monotonic() + args.seconds]
                await asyncio.gather(
                    *(
                        client_loop(
                            http, ledger, "overload", stop_at, args.overload_texts, retry_after=retry_after
                        )
                        for _ in range(args.overload_clients)
                    )
                )
            stop.set()
            await sampler
            return time.perf_counter() - started

        seconds = asyncio.run(overload())
        time.sleep(2.0)
        after = rss_mb(server.process.pid)
        overload_statuses = statuses(ledger, "overload")
        figures["overload"] = {
            **latency_row(ledger, "overload", seconds, args.overload_texts),
            "statuses": overload_statuses,
            "retry_after_values": sorted(set(retry_after)),
            "server_alive": server.alive(),
            "rss_baseline_mb": baseline,
            "rss_peak_mb": max(peak),
            "rss_after_mb": after,
        }

        # 3. a client that disconnects mid-request
        disconnect_mid_request(server, "disconnect-0")
        healthy = httpx.post(server.url + "/v1/analyze", json={"text": EN}, timeout=60).status_code
        time.sleep(0.5)
        for _ in range(200):
            events = server_log(log).get("disconnect-0", [])
            if any(e["event"] == "end" for e in events):
                break
            time.sleep(0.1)
        figures["disconnect"] = {
            "server_events": [e["event"] for e in events],
            "server_status": next((e.get("status") for e in events if e["event"] == "end"), None),
            "next_request_status": healthy,
        }

        # 4. restart mid-load
        restart: dict[str, Any] = {}

        async def restart_mid_load() -> float:
            limits = httpx.Limits(max_connections=args.clients)
            async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as http:
                started = time.perf_counter()
                stop_at = [float("inf")]
                clients = [
                    asyncio.create_task(client_loop(http, ledger, "restart", stop_at, 2))
                    for _ in range(args.clients)
                ]
                await asyncio.sleep(args.seconds / 2)
                restart["drain_s"] = await asyncio.to_thread(server.terminate)
                restart["restart_s"] = await asyncio.to_thread(server.start)
                stop_at[0] = time.monotonic() + args.seconds / 2  # as long again on the new server
                await asyncio.gather(*clients)
                return time.perf_counter() - started

        seconds = asyncio.run(restart_mid_load())
        figures["restart"] = {
            **restart,
            **latency_row(ledger, "restart", seconds, 2),
            "statuses": statuses(ledger, "restart"),
            "ledger": reconcile(ledger, server_log(log), "restart"),
        }
        figures["steady"]["ledger"] = reconcile(ledger, server_log(log), "steady")
        figures["overload"]["ledger"] = reconcile(ledger, server_log(log), "overload")
        figures["server_alive_at_end"] = server.alive()
    finally:
        if server.alive():
            server.terminate()
    report(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


def report(figures: dict[str, Any]) -> None:
    def row(name: str, data: dict[str, Any]) -> str:
        return (
            f"{name:<10} {data['requests_per_s']:8.1f} req/s {data['texts_per_s']:8.1f} texts/s   "
            f"p50 {data['p50_ms']:7.1f} ms  p95 {data['p95_ms']:7.1f} ms  p99 {data['p99_ms']:7.1f} ms   "
            f"statuses {data['statuses']}"
        )

    print(f"\nserver start (model loaded): {figures['startup_s']:.1f} s")
    print(row("steady", figures["steady"]))
    print(
        "           server stages (p50/p95 ms, warm-up included): "
        + ", ".join(f"{k} {v['p50_ms']:.1f}/{v['p95_ms']:.1f}" for k, v in figures["stages"].items())
    )
    overload = figures["overload"]
    print(row("overload", overload))
    print(
        f"           503 Retry-After values {overload['retry_after_values']}, server alive: {overload['server_alive']}; "
        f"RSS baseline {overload['rss_baseline_mb']:.0f} MiB, peak {overload['rss_peak_mb']:.0f} MiB, "
        f"after {overload['rss_after_mb']:.0f} MiB ({overload['rss_after_mb'] - overload['rss_baseline_mb']:+.0f})"
    )
    disconnect = figures["disconnect"]
    print(
        f"disconnect server log {disconnect['server_events']} (status {disconnect['server_status']}); "
        f"next request: {disconnect['next_request_status']}"
    )
    restart = figures["restart"]
    print(row("restart", restart))
    print(
        f"           drained and exited in {restart['drain_s']:.2f} s, back up in {restart['restart_s']:.1f} s"
    )
    for phase in ("steady", "overload", "restart"):
        print(f"ledger {phase:<9} {figures[phase]['ledger']}")
    print(f"server alive at the end: {figures['server_alive_at_end']}")


if __name__ == "__main__":
    raise SystemExit(main())
