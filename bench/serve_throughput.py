"""Throughput of the production web server (gunicorn, as `manage.py serve` runs it) against runserver.

    .venv/bin/python bench/serve_throughput.py [--clients 50] [--seconds 20] [--workers N] [--smoke]

One installation (a fresh SQLite file, or the DATABASE_URL given: then a user of its own is
added to it) with a user, an API token, and a deployment of an iris MLP (random weights: the
serving cost does not depend on training). DEBUG off, static files collected, as in production.
Both servers listen on free loopback ports: the production server (gunicorn, gthread, --workers
web workers, default one per core) and `manage.py runserver --noreload` (threaded). For each
server and each endpoint, --clients threads (http.client, one kept-alive connection each, all
connecting at once) send requests back to back for --seconds in all, after a short warm-up, in
--rounds slices taken in turn (server by server, endpoint by endpoint: whatever else the machine
runs meanwhile weighs on each pair alike):

- no-op: `GET /api/v1/teams/` with the token (authentication, one page of a list);
- predict: `POST /api/v1/deployments/<id>/predict` with one sample (batch 1).

A connection the server refuses, resets or does not accept within 5 s counts as failed (the
client tries again); an answer that is not 200 is counted apart and is no throughput. Prints
per server and endpoint: requests, failed connections, non-200 answers, throughput (200s a
second), p50 and p99 latency; then the ratios production/runserver and predict/no-op against
the goals (no failed connection on the production server, production/runserver >= 1.5,
predict >= 0.8x the no-op on production). A full run exits 1 when a goal is missed.

The load generator runs on the same cores as the servers. By default it is wrk (Debian's
package, C: each slice is `wrk -t2 -c<clients>` with a Lua script for the method, body and token;
socket errors and timeouts count as failed connections), which needs a fraction of the CPU that
Python clients need, so the servers get the cores; `--load python` (the fallback without wrk) runs
the clients as threads of this process (http.client, socket calls release the GIL).

The table also gives the CPU time the server's processes used and the requests answered per
CPU second: on a machine that other work keeps busy, throughput follows the share of the cores
a server gets, and requests per CPU second shows what each costs regardless.

--smoke: the same servers and endpoints, 2 s each (2 slices) after a 1 s warm-up; asserts that
the production server failed no connection and answered every request with a 200, but not the
ratios (a loaded CI machine moves those). runserver's failures are printed, not asserted: it is
the baseline, and it runs one thread with its own database connection per client.
"""

import argparse
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SMOKE = {"seconds": 2.0, "warmup": 1.0, "rounds": 2}  # --smoke
GOAL_SPEEDUP, GOAL_PREDICT_SHARE = 1.5, 0.8
SERVERS = ("production", "runserver")


@dataclass
class Tally:
    """What the clients of one run counted (each client adds its own, then they are merged)."""

    latencies_ms: list[float] = field(default_factory=list)
    failed_connections: int = 0
    non_200: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    server_cpu_seconds: float = 0.0  # what the server's processes used meanwhile
    counted: int = 0  # answers counted by wrk (which reports percentiles, not each latency)
    slice_percentiles: list[tuple[float, float]] = field(default_factory=list)  # wrk: (p50, p99) per slice

    @property
    def answered(self) -> int:
        return len(self.latencies_ms) + self.counted

    def percentile(self, q: float) -> float:
        if self.slice_percentiles:  # wrk slices: the median slice's p50, the worst slice's p99
            values = sorted(p50 if q == 0.5 else p99 for p50, p99 in self.slice_percentiles)
            return values[len(values) // 2] if q == 0.5 else values[-1]
        return _percentile(self.latencies_ms, q)

    def merge(self, other: "Tally") -> None:
        self.latencies_ms += other.latencies_ms
        self.counted += other.counted
        self.slice_percentiles += other.slice_percentiles
        self.failed_connections += other.failed_connections
        self.non_200 += other.non_200
        self.server_cpu_seconds += other.server_cpu_seconds
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count


@dataclass(frozen=True)
class Endpoint:
    label: str
    method: str
    path: str
    body: bytes | None
    headers: dict


def _environment(workdir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE="lepton_web.settings",
        DATABASE_URL=os.environ.get("DATABASE_URL") or f"sqlite:///{workdir / 'bench.sqlite3'}",
        LEPTON_VAR_DIR=str(workdir),
        LEPTON_MEDIA_ROOT=str(workdir / "media"),
        LEPTON_STATIC_ROOT=str(workdir / "static"),
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        LEPTON_PREDICT_RATE="100000000/minute",  # measure serving, not the throttle's refusals
    )
    return env


def _install(env: dict) -> tuple[str, int]:
    """Migrate, collect static files, and make a user with a token and an iris MLP deployment."""
    os.environ.update(env)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    from django.contrib.auth import get_user_model

    from apps.accounts.services import team_create
    from apps.accounts.tokens import token_create
    from apps.datasets import services as datasets
    from apps.datasets.models import DatasetVersion
    from apps.deployments.services import deployment_create
    from apps.registry.architectures import build_model
    from apps.registry.services import model_create, version_from_weights

    user = get_user_model().objects.create_user(f"bench-{secrets.token_hex(4)}", password=secrets.token_urlsafe())
    team = team_create(creator=user, name=f"Bench {user.username}")
    dataset = datasets.dataset_create(actor=user, team=team, name="iris", task="tabular_classification")
    data = DatasetVersion.objects.create(
        dataset=dataset,
        number=1,
        source_format="bundled",
        source_name="iris",
        source_options={"name": "iris", "params": {}, "seed": 0},
    )
    data = datasets.version_ingest(data)
    spec = {"family": "mlp", "hidden_sizes": [32]}
    model = model_create(
        actor=user, team=team, name="iris-mlp", task="tabular_classification", architecture=spec, dataset=dataset
    )
    module = build_model(model.architecture, input_shape=tuple(data.sample_shape), num_classes=3)
    version = version_from_weights(
        actor=user,
        model=model,
        weights=module.state_dict(),
        spec=model.architecture,
        dataset_version=data,
        source="train",
    )
    deployment = deployment_create(actor=user, model=model, name="iris", version=version)
    return token_create(user=user, name="bench")[1], deployment.pk


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_command(name: str, port: int, workers: int) -> list[str]:
    from django.conf import settings

    from apps.core.webserver import gunicorn_command

    bind = f"127.0.0.1:{port}"
    if name == "production":
        return gunicorn_command(bind=bind, workers=workers, threads=settings.LEPTON_WEB_THREADS)
    return [sys.executable, "manage.py", "runserver", bind, "--noreload"]


def _start(command: list[str], env: dict, port: int, log: Path) -> subprocess.Popen:
    """The server, in a process group of its own, once it answers /healthz; its output goes to `log`."""
    with log.open("wb") as output:  # a file, not a pipe: runserver logs every request, a full pipe would stall it
        server = subprocess.Popen(
            command, cwd=ROOT, env=env, start_new_session=True, stdout=output, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"{command} exited at start: {log.read_text()[-2000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                connection.close()
                return server
        except OSError:
            time.sleep(0.3)
    _stop(server)
    raise RuntimeError(f"{command} did not answer /healthz within 90 s: {log.read_text()[-2000:]}")


def _stop(server: subprocess.Popen) -> None:
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    except ProcessLookupError:
        pass


def _client(port: int, endpoint: Endpoint, start: threading.Barrier, until: list[float], tally: Tally) -> None:
    """One client: a kept-alive connection, requests back to back until `until[0]` (a new connection if it drops)."""
    start.wait()
    connection = None
    while time.monotonic() < until[0]:
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                connection.connect()
            except OSError:  # refused, reset, or not accepted in time
                tally.failed_connections += 1
                connection = None
                time.sleep(0.05)
                continue
        started = time.perf_counter()
        try:
            connection.request(endpoint.method, endpoint.path, body=endpoint.body, headers=endpoint.headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):  # the server dropped a kept-alive connection
            tally.failed_connections += 1
            connection.close()
            connection = None
            continue
        tally.latencies_ms.append((time.perf_counter() - started) * 1000)
        tally.statuses[response.status] = tally.statuses.get(response.status, 0) + 1
        tally.non_200 += response.status != 200
        if response.will_close:  # the server said Connection: close (that is allowed, not a failure)
            connection.close()
            connection = None
    if connection is not None:
        connection.close()


def _load(port: int, endpoint: Endpoint, clients: int, seconds: float) -> tuple[Tally, float]:
    """`clients` threads, all connecting at once, for `seconds`; the merged tally and the time measured."""
    start = threading.Barrier(clients + 1)
    until = [float("inf")]
    tallies = [Tally() for _ in range(clients)]
    threads = [
        threading.Thread(target=_client, args=(port, endpoint, start, until, tally), daemon=True) for tally in tallies
    ]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    until[0] = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    merged = Tally()
    for tally in tallies:
        merged.merge(tally)
    return merged, elapsed


WRK_SCRIPT = """
wrk.method = os.getenv("BENCH_METHOD")
local body = os.getenv("BENCH_BODY")
if body ~= "" then wrk.body = body end
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
if body ~= "" then wrk.headers["Content-Type"] = "application/json" end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d %d %.3f %.3f\\n", summary.requests, e.connect, e.read, e.write,
    e.timeout, e.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def _load_wrk(port: int, endpoint: Endpoint, clients: int, seconds: float) -> tuple[Tally, float]:
    """The same load from wrk (C, two threads, `clients` kept-alive connections): a load generator that
    needs a fraction of the CPU Python threads need, so the servers get the cores."""
    script = Path(tempfile.gettempdir()) / "lepton-bench-wrk.lua"
    script.write_text(WRK_SCRIPT)
    env = {
        **os.environ,
        "BENCH_METHOD": endpoint.method,
        "BENCH_BODY": (endpoint.body or b"").decode(),
        "BENCH_AUTH": endpoint.headers["Authorization"],
    }
    duration = max(1, round(seconds))
    command = ["wrk", "-t2", f"-c{clients}", f"-d{duration}s", "--timeout", "5s", "-s", str(script)]
    done = subprocess.run(
        [*command, f"http://127.0.0.1:{port}{endpoint.path}"], env=env, capture_output=True, text=True, timeout=60
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {done.stdout[-1000:]} {done.stderr[-1000:]}")
    requests, connect, read, write, timeout, status, p50, p99 = line.split()[1:]
    tally = Tally(
        failed_connections=int(connect) + int(read) + int(write) + int(timeout),
        non_200=int(status),
        counted=int(requests),
        slice_percentiles=[(float(p50), float(p99))],
    )
    return tally, float(duration)


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) used so far by `pid` and the processes below it (Linux /proc)."""
    from apps.core.processes import descendants

    ticks = 0
    for each in [pid, *descendants(pid)]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)
    return ticks / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def _measure(args, env: dict, token: str, deployment: int) -> dict[tuple[str, str], tuple[Tally, float]]:
    auth = {"Authorization": f"Bearer {token}"}
    sample = json.dumps({"inputs": [[5.1, 3.5, 1.4, 0.2]], "k": 1}).encode()
    endpoints = [
        Endpoint("no-op", "GET", "/api/v1/teams/", None, auth),
        Endpoint(
            "predict",
            "POST",
            f"/api/v1/deployments/{deployment}/predict",
            sample,
            {**auth, "Content-Type": "application/json"},
        ),
    ]
    ports = {name: _free_port() for name in SERVERS}
    load = _load_wrk if args.load == "wrk" else _load
    servers = {}
    try:
        for name, port in ports.items():
            log = Path(env["LEPTON_VAR_DIR"]) / f"{name}.log"
            command = _server_command(name, port, args.workers)
            print(f"  {name}: {' '.join(command[1:])}", flush=True)
            servers[name] = _start(command, env, port, log)
        for endpoint in endpoints:  # loads the module in every worker, warms caches
            for port in ports.values():
                _load(port, endpoint, args.clients, args.warmup)
        # Slices in turn (server by server, endpoint by endpoint), so that each pair sees the same
        # share of whatever else the machine runs meanwhile.
        results = {(name, endpoint.label): (Tally(), 0.0) for endpoint in endpoints for name in ports}
        for round_number in range(args.rounds):
            for endpoint in endpoints:
                for name, port in ports.items():
                    cpu = _cpu_seconds(servers[name].pid)
                    tally, elapsed = load(port, endpoint, args.clients, args.seconds / args.rounds)
                    tally.server_cpu_seconds = _cpu_seconds(servers[name].pid) - cpu
                    total, seconds = results[name, endpoint.label]
                    total.merge(tally)
                    results[name, endpoint.label] = total, seconds + elapsed
            print(f"  round {round_number + 1} of {args.rounds} measured", flush=True)
    finally:
        for server in servers.values():
            _stop(server)
    return results


def _report(args, results) -> list[str]:
    """Print the table and the goals; return the goals missed."""
    print(
        f"\n{args.clients} kept-alive clients, {args.seconds:g} s per server and endpoint in {args.rounds} slices "
        f"taken in turn; {args.workers} production workers; {os.cpu_count()} cores shared with the load generator "
        f"({args.load})"
    )
    print(
        f"{'server':<11}{'endpoint':<9}{'requests':>9}{'failed conn':>12}{'non-200':>8}{'200/s':>8}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'server cpu s':>13}{'req/cpu s':>10}"
    )
    throughput = {}
    for (server, endpoint), (tally, elapsed) in results.items():
        answered = tally.answered
        throughput[server, endpoint] = (answered - tally.non_200) / elapsed  # a 500 is not throughput
        print(
            f"{server:<11}{endpoint:<9}{answered:>9}{tally.failed_connections:>12}{tally.non_200:>8}"
            f"{throughput[server, endpoint]:>8.0f}{tally.percentile(0.5):>8.1f}"
            f"{tally.percentile(0.99):>8.1f}{tally.server_cpu_seconds:>13.1f}"
            f"{answered / max(tally.server_cpu_seconds, 1e-9):>10.0f}"
        )
    for (server, endpoint), (tally, _) in results.items():
        if tally.non_200:
            print(f"  {server} {endpoint}: answers by status {dict(sorted(tally.statuses.items()))}")
    failed = sum(results["production", e][0].failed_connections for e in ("no-op", "predict"))
    speedups = {e: throughput["production", e] / max(throughput["runserver", e], 1e-9) for e in ("no-op", "predict")}
    share = throughput["production", "predict"] / max(throughput["production", "no-op"], 1e-9)
    goals = [
        ("failed connections on production", "0", f"{failed}", failed == 0),
        *[
            (f"production/runserver, {e}", f">= {GOAL_SPEEDUP}", f"{s:.2f}", s >= GOAL_SPEEDUP)
            for e, s in speedups.items()
        ],
        ("predict/no-op on production", f">= {GOAL_PREDICT_SHARE}", f"{share:.2f}", share >= GOAL_PREDICT_SHARE),
    ]
    print(f"\n{'goal':<36}{'wanted':>8}{'measured':>10}")
    for label, wanted, measured, met in goals:
        print(f"{label:<36}{wanted:>8}{measured:>10}  {'met' if met else 'MISSED'}")
    return [label for label, _, _, met in goals if not met]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=8, help="slices per server and endpoint, taken in turn")
    parser.add_argument("--workers", type=int, default=None, help="production web workers (default: one per core)")
    parser.add_argument(
        "--load",
        choices=["wrk", "python"],
        default="wrk" if shutil.which("wrk") else "python",
        help="the load generator: wrk (Debian's package; the default when installed) or Python threads",
    )
    parser.add_argument("--smoke", action="store_true", help="CI's quick run (see the docstring)")
    args = parser.parse_args()
    if args.smoke:  # smoke sizes replace the defaults only; flags given still win
        parser.set_defaults(**SMOKE)
        args = parser.parse_args()
    # `timeout` (CI) sends SIGTERM: exit through the `finally` that stops the servers started here
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory() as tmp:
        env = _environment(Path(tmp))
        print("installing (migrate, collectstatic, a deployment)", flush=True)
        token, deployment = _install(env)
        from django.conf import settings

        args.workers = args.workers or settings.LEPTON_WEB_WORKERS
        results = _measure(args, env, token, deployment)
    missed = _report(args, results)
    if args.smoke:
        failed = sum(results["production", e][0].failed_connections for e in ("no-op", "predict"))
        assert failed == 0, f"the production server failed {failed} connections"
        for (server, endpoint), (tally, _) in results.items():
            assert tally.answered, f"{server} {endpoint}: no request was answered"
            if server == "production":
                assert tally.non_200 == 0, f"{server} {endpoint}: {tally.non_200} answers other than 200"
    elif missed:
        sys.exit(f"goals missed: {', '.join(missed)}")


if __name__ == "__main__":
    main()
