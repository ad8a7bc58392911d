#!/usr/bin/python3
"""docker/compose.yaml's topology with real processes on loopback.

What compose does, without a container engine: keys from `testfarm keygen` (a farm, three
workers, a client, and the farm's two allow-lists, as the `keygen` service writes them), a
farm (`testfarm serve` with the keys, a store and a dashboard on loopback), three workers with
their own key and cache, and a client that runs the bundled examples through the farm with
its key. The run must pass with every example; then SIGTERM stops the workers (each must exit
0) and the farm.

Every wait is bounded: the farm's port is read from its output as it comes, the workers' joining is
polled with `testfarm status`, each against a deadline.

Usage: compose_loopback.py --testfarm BINARY --examples DIR
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

WORKERS = 3
SLOTS = 2
START_BOUND = 30  # seconds: the farm's first line, the workers joining
RUN_BOUND = 120  # seconds: the client's run
STOP_BOUND = 40  # seconds: a worker's exit after SIGTERM (drain 25s by default, plus slack)


def serve_argv(binary, keys, work):
    """`farm` in compose.yaml, on loopback (port * picks a free one)."""
    return [binary, "serve", "--listen", "tcp://127.0.0.1:*",
            "--key", f"{keys}/farm.key",
            "--worker-keys", f"{keys}/workers",
            "--client-keys", f"{keys}/clients",
            "--store", f"{work}/store",
            "--http", "127.0.0.1:0",
            "--metrics", "127.0.0.1:0",
            ]


def scrape(work, farm, named):
    """GET /metrics of the farm (its address from its 'metrics on' line): {series: value}."""
    line = wait_for_line(f"{work}/farm.out", "testfarm: metrics on ", farm, START_BOUND)
    if line is None:
        fail("the farm said no 'metrics on' line", *named)
    url = line.split()[-1]
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    series = {}
    for sample in text.splitlines():
        if sample and not sample.startswith("#"):
            name, value = sample.rsplit(" ", 1)
            series[name] = float(value)
    return series


def worker_argv(binary, keys, work, endpoint, i):
    """`worker-I` in compose.yaml."""
    return [binary, "worker", "--connect", endpoint, "--name", f"worker-{i}",
            "--key", f"{keys}/worker-{i}.key",
            "--coordinator-key", f"{keys}/farm.pub",
            "--slots", str(SLOTS),
            "--cache-dir", f"{work}/cache-{i}",
            "--health-file", health_file(work, i),
            "--drain-timeout", "25s",
            ]


def health_file(work, i):
    return f"{work}/health-{i}"


def healthy(work, i):
    """compose.yaml's worker healthcheck: grep -q '^connected' FILE."""
    try:
        with open(health_file(work, i)) as f:
            return f.read().startswith("connected ")
    except FileNotFoundError:
        return False


def client_argv(binary, keys, endpoint, examples, report):
    """`client` in compose.yaml."""
    return [binary, "run", "--farm", endpoint,
            "--key", f"{keys}/client.key",
            "--farm-key", f"{keys}/farm.pub",
            "--run-label", "compose-examples",
            "--json", report] + examples


def fail(message, *children):
    """Kills the children, prints their output (each logs to NAME.out and NAME.err)."""
    print("FAIL:", message)
    for name, child in children:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)
        for stream in ("out", "err"):
            with open(f"{child.log}.{stream}", errors="replace") as f:
                print(f"--- {name} std{stream} (tail) ---\n{f.read()[-3000:]}")
    sys.exit(1)


def wait_for_line(path, prefix, child, bound):
    """Polls the file `path` (a child's stdout) until a line starts with `prefix`, the child
    exits, or `bound` seconds pass; returns that line, or None."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return line.strip()
        if child.poll() is not None:
            return None
        time.sleep(0.05)  # the poll's pace, bounded by the deadline above
    return None


def status(binary, keys, endpoint):
    r = subprocess.run([binary, "status", "--farm", endpoint, "--key", f"{keys}/client.key",
                        "--farm-key", f"{keys}/farm.pub", "--json", "--timeout", "5s"],
                       capture_output=True, text=True, timeout=15)
    if r.returncode != 0:
        return None
    try:
        return json.loads(r.stdout)
    except json.JSONDecodeError:
        return None


def wait_connected(binary, keys, endpoint, bound):
    """Polls the farm's status until every worker has joined; the status, or None."""
    deadline = time.monotonic() + bound
    last = None
    while time.monotonic() < deadline:
        last = status(binary, keys, endpoint)
        names = sorted(w["name"] for w in (last or {}).get("workers", []))
        if names == [f"worker-{i}" for i in range(1, WORKERS + 1)]:
            return last
        time.sleep(0.2)  # the poll's pace, bounded by the deadline above
    print("last status:", json.dumps(last))
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--testfarm", required=True)
    parser.add_argument("--examples", required=True)
    args = parser.parse_args()
    binary = os.path.abspath(args.testfarm)
    examples = sorted(os.path.join(args.examples, f) for f in os.listdir(args.examples)
                      if f.endswith("_test"))
    if len(examples) != 4:
        fail(f"expected the 4 bundled examples in {args.examples}, found {examples}")

    with tempfile.TemporaryDirectory(prefix="testfarm-compose-") as work:
        keys = f"{work}/keys"
        os.mkdir(keys)
        # The `keygen` service.
        for name in ["farm"] + [f"worker-{i}" for i in range(1, WORKERS + 1)] + ["client"]:
            subprocess.run([binary, "keygen", f"{keys}/{name}"], check=True,
                           capture_output=True, timeout=30)
        with open(f"{keys}/workers", "w") as out:
            for i in range(1, WORKERS + 1):
                out.write(open(f"{keys}/worker-{i}.pub").read())
        with open(f"{keys}/clients", "w") as out:
            out.write(open(f"{keys}/client.pub").read())

        def spawn(argv, name):
            # Output to files: a pipe nobody reads could fill and stall the child.
            with open(f"{work}/{name}.out", "w") as out, open(f"{work}/{name}.err", "w") as err:
                child = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
            child.log = f"{work}/{name}"
            return child

        farm = spawn(serve_argv(binary, keys, work), "farm")
        line = wait_for_line(f"{work}/farm.out", "testfarm: listening on ", farm, START_BOUND)
        if line is None:
            fail(f"the farm said no 'listening on' within {START_BOUND}s", ("farm", farm))
        endpoint = line.split()[-1]
        print("farm:", open(f"{work}/farm.out").read().strip().replace("\n", " | "))

        workers = [spawn(worker_argv(binary, keys, work, endpoint, i), f"worker-{i}")
                   for i in range(1, WORKERS + 1)]
        named = [("farm", farm)] + [(f"worker-{i}", w) for i, w in enumerate(workers, 1)]
        st = wait_connected(binary, keys, endpoint, START_BOUND)
        if st is None:
            fail(f"the {WORKERS} workers did not all join within {START_BOUND}s", *named)
        print("joined:", ", ".join(f"{w['name']} ({w['slots']} slots)" for w in st["workers"]))
        deadline = time.monotonic() + START_BOUND
        while not all(healthy(work, i) for i in range(1, WORKERS + 1)):
            if time.monotonic() > deadline:
                fail("the workers' health files do not all say 'connected'", *named)
            time.sleep(0.05)  # the poll's pace, bounded by the deadline above
        print("healthy: every worker's health file says connected")

        report = f"{work}/report.json"
        try:
            client = subprocess.run(client_argv(binary, keys, endpoint, examples, report),
                                    capture_output=True, text=True, timeout=RUN_BOUND)
        except subprocess.TimeoutExpired:
            fail(f"the client's run took over {RUN_BOUND}s", *named)
        print(client.stdout)
        lines = client.stdout.strip().splitlines()
        if client.returncode != 0 or not lines or lines[-1] != f"{len(examples)} passed, 0 failed":
            print(client.stderr)
            fail(f"the client exited {client.returncode}, last line {lines[-1:]}", *named)
        attempts = json.load(open(report))["attempts"]
        ran_on = sorted({a["worker"] for a in attempts})
        if len(attempts) != len(examples) or not all(a["status"] == "passed" for a in attempts):
            fail(f"the report: {json.dumps(attempts)}", *named)
        if not all(w.startswith("worker-") for w in ran_on):
            fail(f"tests ran on {ran_on}, not only on the farm's workers", *named)
        print(f"report: {len(attempts)} passed, on {', '.join(ran_on)}")
        # The farm's gauges follow its fleet at most four times a second: scrape until they
        # have caught up, within a bound.
        want = {"testfarm_workers": WORKERS, "testfarm_slots": WORKERS * SLOTS,
                'testfarm_tests_finished_total{status="passed"}': len(examples)}
        deadline = time.monotonic() + START_BOUND
        while True:
            metrics = scrape(work, farm, named)
            got = {name: metrics.get(name) for name in want}
            if got == want:
                break
            if time.monotonic() > deadline:
                fail(f"metrics {got}, wanted {want}", *named)
            time.sleep(0.05)  # the poll's pace, bounded by the deadline above
        print("metrics:", ", ".join(f"{k} {v:g}" for k, v in got.items()))

        # `docker compose down`: SIGTERM to each worker, then the farm.
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for i, w in enumerate(workers, 1):
            try:
                code = w.wait(timeout=STOP_BOUND)
            except subprocess.TimeoutExpired:
                fail(f"worker-{i} still running {STOP_BOUND}s after SIGTERM", *named)
            if code != 0:
                fail(f"worker-{i} exited {code} after SIGTERM, not 0", *named)
            if os.path.exists(health_file(work, i)):
                fail(f"worker-{i} left its health file behind", *named)
        farm.send_signal(signal.SIGTERM)
        try:
            code = farm.wait(timeout=STOP_BOUND)
        except subprocess.TimeoutExpired:
            fail(f"the farm still running {STOP_BOUND}s after SIGTERM", ("farm", farm))
        print(f"stopped: {WORKERS} workers exited 0 on SIGTERM, the farm exited {code}")
        if code != 0:
            fail(f"the farm exited {code} after SIGTERM", ("farm", farm))
    return 0


if __name__ == "__main__":
    sys.exit(main())
