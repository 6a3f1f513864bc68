"""Call authorizations per second through `commcredits serve`, next to `/healthz` of the same server.

`commcredits serve` runs as it does in production (its own process, uvicorn) on a fresh store
with `--orgs` organizations (funds, a switch's operator key). A second process plays the
switches: `--clients` keep-alive HTTP/1.1 connections (asyncio, a minimal client so the load
generator costs little of the two cores), each sending its next request when the last is
answered. Segments alternate, `/healthz` then authorizations, `--runs` times, each `--seconds`
long; every authorization is a new call id of the next organization (round robin), allowed,
committed before its answer. Reported: requests/s, p50/p99 latency (client side, send to last
byte), the ratio of the authorization rate to the `/healthz` rate of the same run, medians of
the runs, the CPU time the server and its desk process spent per request, and their peak
memory (VmHWM of each process).

    python bench/authorize_throughput.py [--runs 3] [--seconds 10] [--clients 32] [--orgs 1000]
                                         [--database-url postgresql://postgres@127.0.0.1:5432/test]
"""

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from application.settings import sqlite_store, store_from_url  # noqa: E402
from tests.serve_process import ServeProcess, new_key, set_up  # noqa: E402

SET_UP_AT = "2026-01-01T00:00:00Z"


def organizations(orgs: int) -> list[dict]:
    """`orgs` organizations, each with a user who may pay from credits and 1,000,000 of funds."""
    lines = []
    for number in range(orgs):
        org = f"org-{number}"
        lines += [
            {"type": "organization.created", "at": SET_UP_AT, "org": org, "name": org, "country": "US",
             "currency": "USD", "commerce": "legacy", "agreements": ["EA-1"]},
            {"type": "user.added", "at": SET_UP_AT, "org": org, "user": "alice@example.com", "usage_location": "US"},
            {"type": "order.placed", "at": SET_UP_AT, "org": org, "order": "o-1", "funds": "1000000",
             "auto_recharge": {"enabled": False},
             "payment": {"method": "enterprise_agreement", "agreement": "EA-1", "po": None}},
            {"type": "licences.assigned", "at": SET_UP_AT, "org": org, "users": ["alice@example.com"],
             "licences": ["PHONE_SYSTEM", "CALLING_PLAN_PAYG", "COMMUNICATIONS_CREDITS"]},
        ]
    return lines


# ----- the switches' process --------------------------------------------------------------------

def _request(path: str, key: str, body: bytes | None) -> bytes:
    if body is None:
        return f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    return (f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


async def _switches(port: int, kind: str, seconds: float, clients: int, orgs: int, key: str, run: int) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds

    async def one_switch() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            if kind == "healthz":
                request = _request("/healthz", key, None)
            else:
                number = next(counter)
                body = orjson.dumps({"call_id": f"r{run}-{number}", "call_type": "user_out", "user": "alice@example.com",
                                     "caller_number": "+14255550100", "destination_number": "+12065550123",
                                     "requested_seconds": 300})
                request = _request(f"/v1/organizations/org-{number % orgs}/authorizations", key, body)
            started = time.perf_counter()
            writer.write(request)
            status, payload = await _read_response(reader)
            latencies.append(time.perf_counter() - started)
            if status != 200 or (kind == "authorize" and b'"allowed"' not in payload):
                errors.append(f"{status} {payload[:200]!r}")
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_switch() for _ in range(clients)))
    elapsed = time.perf_counter() - started  # covers every request, the last answers included
    latencies.sort()
    return {"kind": kind, "requests": len(latencies), "elapsed": elapsed, "rate": len(latencies) / elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2], "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
            "errors": len(errors), "first_error": errors[0] if errors else None}


def _switch_process(port: int, kind: str, seconds: float, clients: int, orgs: int, key: str, run: int, out) -> None:
    out.send(asyncio.run(_switches(port, kind, seconds, clients, orgs, key, run)))


def segment(port: int, kind: str, seconds: float, clients: int, orgs: int, key: str, run: int,
            server_pid: int | None = None) -> dict:
    """One segment; with `server_pid`, also the CPU time the server and its desk process spent per
    request (read from /proc before and after: the clock covers every request of the segment)."""
    processes = [server_pid, *desk_processes(server_pid)] if server_pid else []
    before = [cpu_seconds(pid) for pid in processes]
    receive, send = multiprocessing.Pipe(duplex=False)
    process = multiprocessing.Process(target=_switch_process, args=(port, kind, seconds, clients, orgs, key, run, send))
    process.start()
    result = receive.recv()
    process.join()
    spent = [cpu_seconds(pid) - start for pid, start in zip(processes, before)]
    if spent:
        result["server_us"] = 1e6 * spent[0] / result["requests"]
        result["desk_us"] = 1e6 * sum(spent[1:]) / result["requests"]
    return result


def desk_processes(pid: int) -> list[int]:
    """`serve`'s desk process (a child started by multiprocessing's spawn; not its resource tracker)."""
    children = []
    for tasks in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (tasks / "children").read_text().split()]
    return [child for child in children if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def peak_memory_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--database-url", help="PostgreSQL URL (a fresh schema is made in it); default: a SQLite file")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="authorize-bench-"))
    schema = None
    if args.database_url:
        import psycopg
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(args.database_url, autocommit=True) as connection:
            connection.execute(f"CREATE SCHEMA {schema}")
        store = store_from_url(f"{args.database_url}?schema={schema}")
    else:
        store = sqlite_store(workdir / "events.sqlite")
    print(f"store: {store.description}; {args.orgs} organizations; {args.clients} clients; "
          f"{args.runs} runs of {args.seconds:.0f} s per segment; {os.cpu_count()} cores", flush=True)
    started = time.perf_counter()
    set_up(store, organizations(args.orgs))
    key = new_key(store, None, "operator")
    print(f"set-up: {time.perf_counter() - started:.1f} s", flush=True)

    results: list[tuple[dict, dict]] = []
    try:
        with ServeProcess(store, workdir / "serve") as server:
            segment(server.port, "authorize", 2.0, args.clients, args.orgs, key, -1)  # warm-up: accounts loaded
            for run in range(args.runs):
                pid = server.process.pid
                health = segment(server.port, "healthz", args.seconds, args.clients, args.orgs, key, run, pid)
                authorize = segment(server.port, "authorize", args.seconds, args.clients, args.orgs, key, run, pid)
                results.append((health, authorize))
                for result in (health, authorize):
                    print(f"run {run + 1} {result['kind']:>9}: {result['rate']:7.0f}/s  p50 {result['p50_ms']:6.2f} ms  "
                          f"p99 {result['p99_ms']:6.2f} ms  CPU per request: server {result['server_us']:4.0f} µs, "
                          f"desk {result['desk_us']:4.0f} µs  ({result['requests']} requests, {result['errors']} errors"
                          + (f"; first: {result['first_error']}" if result['errors'] else "") + ")", flush=True)
            memory = [peak_memory_mib(pid) for pid in [server.process.pid, *desk_processes(server.process.pid)]]
    finally:
        if schema:
            import psycopg
            with psycopg.connect(args.database_url, autocommit=True) as connection:
                connection.execute(f"DROP SCHEMA {schema} CASCADE")

    def median(kind: int, field: str) -> float:
        return statistics.median(result[kind][field] for result in results)

    ratios = [authorize["rate"] / health["rate"] for health, authorize in results]
    print(f"\nmedians of {args.runs} runs:")
    print(f"  /healthz        {median(0, 'rate'):7.0f}/s  p50 {median(0, 'p50_ms'):.2f} ms  p99 {median(0, 'p99_ms'):.2f} ms")
    print(f"  authorizations  {median(1, 'rate'):7.0f}/s  p50 {median(1, 'p50_ms'):.2f} ms  p99 {median(1, 'p99_ms'):.2f} ms")
    print(f"  ratio to /healthz (per run, then median): {statistics.median(ratios):.2f} "
          f"({', '.join(f'{ratio:.2f}' for ratio in ratios)})")
    print(f"  CPU per request (medians): /healthz {median(0, 'server_us'):.0f} µs; authorization: server "
          f"{median(1, 'server_us'):.0f} µs + desk {median(1, 'desk_us'):.0f} µs")
    print(f"  peak memory (VmHWM): server {memory[0]:.0f} MiB" + "".join(f", desk {peak:.0f} MiB" for peak in memory[1:]))


if __name__ == "__main__":
    main()
