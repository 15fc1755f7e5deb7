#!/usr/bin/env python3
"""The Python half of scripts/bench (standard library only).

scripts/bench starts and stops the processes; this file does what is easier in Python:

  counts SCALE                      the dataset's key counts for SCALE
  gen N_STR N_HASH N_LIST N_SET N_ZSET N_BIG HSET|HMSET
                                    the dataset as RESP commands, on stdout
  freeport                          a free TCP port on 127.0.0.1
  busy                              % of all CPUs in use over the next second
  ready PORT PID TIMEOUT            wait until the server on PORT is process PID and loaded
  idle PORT                         wait until the server has no fork and no replica
  keyspace PORT                     "db0=N db9=M" (keys per db)
  native SRC_PORT DST_PORT MAJOR    REPLICAOF (SLAVEOF before 5.0) and the seconds until
                                    master_link_status:up
  lag ...                           the lag phase (see `lag --help`)
  report RESULTS META               the Markdown report
"""

import argparse
import json
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time

# --- a minimal RESP client ----------------------------------------------------------


class ReplyError(Exception):
    pass


class Redis:
    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.sock.makefile("rb")

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass

    def send(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = b"%d" % a
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))

    def read(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("connection closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise ReplyError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ConnectionError(f"unexpected reply {line!r}")

    def call(self, *args):
        self.send(*args)
        return self.read()

    def info_text(self, section=None):
        reply = self.call("INFO", section) if section else self.call("INFO")
        return reply.decode()

    def info(self, section=None):
        return parse_info(self.info_text(section))


def parse_info(text):
    out = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v
    return out


def replica_offset(info):
    """The first replica's acknowledged offset (slave0:...,offset=N,...), or None."""
    line = info.get("slave0")
    if not line:
        return None
    for part in line.split(","):
        if part.startswith("offset="):
            return int(part[7:])
    return None


def keyspace(info):
    """{db: keys} from INFO keyspace."""
    out = {}
    for k, v in info.items():
        if k.startswith("db") and k[2:].isdigit():
            fields = dict(p.split("=", 1) for p in v.split(","))
            out[int(k[2:])] = int(fields["keys"])
    return out


def fmt_keyspace(ks):
    return " ".join(f"db{db}={n}" for db, n in sorted(ks.items())) or "empty"


def die(msg):
    print(f"scripts/bench: {msg}", file=sys.stderr)
    sys.exit(1)


# --- the dataset --------------------------------------------------------------------

COUNTS = (1_000_000, 100_000, 10_000, 10_000, 10_000, 500_000)


def cmd_counts(args):
    s = float(args[0])
    print(*(max(1, round(n * s)) for n in COUNTS))


def cmd_gen(args):
    """RESP for the whole dataset on stdout (deterministic: the same bytes every time)."""
    n_str, n_hash, n_list, n_set, n_zset, n_big = map(int, args[:6])
    hset = args[6].encode()
    out = sys.stdout.buffer
    buf = []
    size = 0

    def flush():
        nonlocal size
        out.write(b"".join(buf))
        buf.clear()
        size = 0

    def cmd(*a):
        nonlocal size
        piece = b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a)
        buf.append(piece)
        size += len(piece)
        if size > 1 << 20:
            flush()

    # 100-byte strings that LZF cannot shrink: windows into 2 MiB of random hex (a
    # different window for each key; LZF looks only inside one value), so the RDB holds
    # them at full size, as a real dataset of ids, tokens or hashes would be.
    pool = random.Random(20261121).randbytes(1 << 20).hex().encode()
    span = len(pool) - 100
    for i in range(n_str):
        key = b"str:%d" % i
        off = (i * 7919) % span
        buf.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n" % (len(key), key, pool[off:off + 100]))
        size += 130
        if size > 1 << 20:
            flush()

    cities = [b"Lisbon", b"Oslo", b"Nairobi", b"Lima", b"Osaka", b"Quebec", b"Tbilisi"]
    for i in range(n_hash):
        cmd(hset, b"hash:%d" % i,
            b"name", b"user-%d" % i,
            b"email", b"user-%d@example.com" % i,
            b"age", b"%d" % (18 + i % 70),
            b"visits", b"%d" % (i * 7919 % 100000),
            b"city", cities[i % len(cities)])
    for i in range(n_list):
        cmd(b"RPUSH", b"list:%d" % i, *[b"item:%d:%d" % (i, j) for j in range(100)])
    for i in range(n_set):
        cmd(b"SADD", b"set:%d" % i, *[b"member:%d:%d" % (j, i) for j in range(100)])
    for i in range(n_zset):
        a = []
        for j in range(100):
            a += [b"%.17g" % (j * 1.5 + i / 7), b"player:%d:%d" % (i, j)]
        cmd(b"ZADD", b"zset:%d" % i, *a)
    # The four big keys, in batches of 1000 elements.
    for start in range(0, n_big, 1000):
        r = range(start, min(start + 1000, n_big))
        cmd(b"RPUSH", b"big:list", *[b"entry-%08d" % j for j in r])
        cmd(b"SADD", b"big:set", *[b"member-%08d" % j for j in r])
        a = []
        for j in r:
            a += [b"%.17g" % (j * 0.25), b"member-%08d" % j]
        cmd(b"ZADD", b"big:zset", *a)
        a = []
        for j in r:
            a += [b"field-%08d" % j, b"value-%08d-%s" % (j, b"x" * 12)]
        cmd(hset, b"big:hash", *a)
    flush()


# --- small commands -------------------------------------------------------------------


def cmd_freeport(_args):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def cpu_sample():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields), fields[3] + fields[4]  # total, idle + iowait


def cmd_busy(_args):
    t0, i0 = cpu_sample()
    time.sleep(1)
    t1, i1 = cpu_sample()
    print(f"{100 * (1 - (i1 - i0) / max(1, t1 - t0)):.0f}")


def cmd_ready(args):
    """Exit 0 once PORT answers as process PID with its dataset loaded; 2 if PID died
    (scripts/bench then looks for a taken port in the log); 1 on timeout."""
    port, pid, timeout = int(args[0]), int(args[1]), float(args[2])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            sys.exit(2)
        try:
            r = Redis(port, timeout=5)
            try:
                info = r.info()
            finally:
                r.close()
            if int(info.get("process_id", -1)) == pid and info.get("loading") == "0":
                sys.exit(0)
        except (OSError, ReplyError, ConnectionError):
            pass
        time.sleep(0.02)
    sys.exit(1)


def cmd_idle(args):
    """Wait (up to 60 s) until the server has no fork running and no replica attached,
    so that every sync starts from the same state."""
    port = int(args[0])
    r = Redis(port)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = r.info()
        if info.get("rdb_bgsave_in_progress", "0") == "0" and info.get("connected_slaves", "0") == "0":
            return
        time.sleep(0.02)
    die(f"the source on port {port} still has a fork or a replica after 60 s")


def cmd_keyspace(args):
    r = Redis(int(args[0]))
    print(fmt_keyspace(keyspace(r.info("keyspace"))))


def cmd_native(args):
    """Time from REPLICAOF until the replica reports master_link_status:up (the snapshot
    transferred and loaded), polling INFO replication every 10 ms; seconds on stdout."""
    src, dst, major = int(args[0]), int(args[1]), int(args[2])
    r = Redis(dst, timeout=60)
    verb = "REPLICAOF" if major >= 5 else "SLAVEOF"
    t0 = time.perf_counter()
    r.call(verb, "127.0.0.1", str(src))
    deadline = t0 + 600
    while True:
        if r.info("replication").get("master_link_status") == "up":
            break
        if time.perf_counter() > deadline:
            die("native replication did not finish within 600 s")
        time.sleep(0.01)
    print(f"{time.perf_counter() - t0:.6f}")


# --- the lag phase ----------------------------------------------------------------------


def proc_cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except OSError:
        return None


def proc_status(pid, key):
    """A field of /proc/PID/status in KiB (VmRSS, VmHWM), or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def pct(values, p):
    """Nearest-rank percentile."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def capture_evidence(a, dst, why):
    """Everything that may explain an acknowledged offset that stopped short."""
    os.makedirs(a.evidence, exist_ok=True)
    print(f"scripts/bench: {why}: capturing evidence in {a.evidence}", file=sys.stderr)

    def write(name, text):
        with open(os.path.join(a.evidence, name), "w") as f:
            f.write(text)

    write("why.txt", why + "\n")
    src = Redis(a.src)
    for i in range(1, 4):
        write(f"source-info-replication-{i}.txt", f"# at {time.time():.3f}\n" + src.info_text("replication"))
        time.sleep(1)
    write("source-client-list.txt", src.call("CLIENT", "LIST").decode())
    write("source-info.txt", src.info_text())
    try:
        write("destination-info.txt", Redis(dst).info_text())
        write("destination-client-list.txt", Redis(dst).call("CLIENT", "LIST").decode())
    except (OSError, ReplyError, ConnectionError) as e:
        write("destination-info.txt", f"unavailable: {e}\n")
    lines = []
    for name in ("status", "wchan", "stack"):
        try:
            with open(f"/proc/{a.replica_pid}/{name}") as f:
                lines.append(f"== /proc/{a.replica_pid}/{name}\n{f.read()}")
        except OSError as e:
            lines.append(f"== /proc/{a.replica_pid}/{name}: {e}")
    try:
        for tid in sorted(os.listdir(f"/proc/{a.replica_pid}/task"), key=int):
            base = f"/proc/{a.replica_pid}/task/{tid}"
            with open(f"{base}/comm") as f:
                comm = f.read().strip()
            with open(f"{base}/wchan") as f:
                wchan = f.read().strip()
            with open(f"{base}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            lines.append(f"thread {tid} {comm}: state {state}, wchan {wchan}")
    except OSError as e:
        lines.append(f"threads: {e}")
    write("replica-proc.txt", "\n".join(lines) + "\n")
    for name, argv in (
        ("sockets.txt", ["ss", "-tnpi", "state", "established", f"( sport = :{a.src} or dport = :{a.src} or dport = :{dst} )"]),
        ("replica-threads-gdb.txt", ["gdb", "-p", str(a.replica_pid), "-batch", "-ex", "thread apply all bt"]),
    ):
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            write(name, p.stdout + p.stderr)
        except (OSError, subprocess.TimeoutExpired) as e:
            write(name, f"{argv[0]} failed: {e}\n")
    # Last: does the ferry answer a GETACK (WAIT makes the source send one)? If it does,
    # the data arrived and was applied, and only the periodic ACK was missing.
    try:
        src.call("SELECT", str(a.db))
        src.call("INCR", "bench:probe")
        t0 = time.perf_counter()
        n = src.call("WAIT", "1", "3000")
        after = src.info_text("replication")
        write("getack-test.txt", f"WAIT 1 3000 -> {n} after {time.perf_counter() - t0:.3f} s\n\n{after}")
    except (OSError, ReplyError, ConnectionError) as e:
        write("getack-test.txt", f"WAIT failed: {e}\n")


PROBE_TIMEOUT_MS = 10000


def cmd_lag(argv):
    p = argparse.ArgumentParser(prog="bench-lib.py lag")
    p.add_argument("--src", type=int, required=True)
    p.add_argument("--dst", type=int, required=True)
    p.add_argument("--src-pid", type=int, required=True)
    p.add_argument("--dst-pid", type=int, required=True)
    p.add_argument("--replica-pid", type=int, required=True,
                   help="the process that receives the stream: redis-ferry, or the native replica")
    p.add_argument("--kind", choices=("ferry", "native"), required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--benchmark", required=True, help="redis-benchmark")
    p.add_argument("--db", type=int, default=9, help="the db the load writes to")
    p.add_argument("--probe", type=int, default=1, help="WAIT probes every 100 ms")
    p.add_argument("--interval", type=float, default=0.025, help="INFO sampling period")
    p.add_argument("--catchup", type=float, default=20, help="seconds to wait for the ACK after the load")
    p.add_argument("--evidence", required=True, help="directory for evidence if it stalls")
    p.add_argument("--bench-log", required=True)
    p.add_argument("--out", required=True, help="JSON results")
    p.add_argument("--samples", help="every sample as TSV: seconds from the load's start, master offset, "
                                     "acknowledged offset")
    a = p.parse_args(argv)

    samples = []  # (t, master offset, acknowledged offset)
    rss = []  # ferry VmRSS KiB during the load
    stop_sampling = threading.Event()
    stop_probes = threading.Event()
    probes = []  # (t, seconds in WAIT, replicas that acknowledged)
    errors = []

    def sampler():
        try:
            r = Redis(a.src)
            next_rss = 0.0
            while not stop_sampling.is_set():
                t = time.perf_counter()
                info = r.info("replication")
                samples.append((t, int(info["master_repl_offset"]), replica_offset(info)))
                if t >= next_rss:
                    v = proc_status(a.replica_pid, "VmRSS")
                    if v is not None:
                        rss.append(v)
                    next_rss = t + 0.25
                time.sleep(max(0.0, a.interval - (time.perf_counter() - t)))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(f"sampler: {e!r}")

    def prober():
        try:
            r = Redis(a.src)
            r.call("SELECT", str(a.db))
            while not stop_probes.is_set():
                t_incr = time.perf_counter()
                r.call("INCR", "bench:probe")
                t0 = time.perf_counter()
                n = r.call("WAIT", "1", str(PROBE_TIMEOUT_MS))
                probes.append((t0, time.perf_counter() - t0, n, t0 - t_incr))
                stop_probes.wait(0.1)
        except ReplyError as e:
            errors.append(f"probe: {e} (WAIT needs Redis 3.0+)")
        except Exception as e:  # noqa: BLE001
            errors.append(f"probe: {e!r}")

    src = Redis(a.src)
    # Start from a replica that has acknowledged everything so far: right after a sync
    # its first ACK may still be due (the offset shows 0 until then).
    settle = time.perf_counter() + 15
    while True:
        info = src.info("replication")
        ack = replica_offset(info)
        if ack and ack >= int(info["master_repl_offset"]):
            break
        if time.perf_counter() > settle:
            die(f"lag: the replica did not acknowledge the master's offset within 15 s before the load ({info})")
        time.sleep(0.05)
    stats0 = src.info("stats")
    threads = [threading.Thread(target=sampler, daemon=True)]
    if a.probe:
        threads.append(threading.Thread(target=prober, daemon=True))
    for t in threads:
        t.start()
    time.sleep(0.2)  # a few samples before the load
    pids = [("replica", a.replica_pid), ("source", a.src_pid)]
    if a.dst_pid != a.replica_pid:
        pids.append(("destination", a.dst_pid))
    cpu0 = {name: proc_cpu_ticks(pid) for name, pid in pids}
    load_start = time.perf_counter()
    deadline = load_start + a.seconds
    runs = 0
    with open(a.bench_log, "w") as log:
        while time.perf_counter() < deadline - 0.05:
            runs += 1
            cmd = [a.benchmark, "-h", "127.0.0.1", "-p", str(a.src), "-P", "16", "-t", "set,lpush,hset",
                   "-n", "300000", "-r", "100000", "-d", "100", "--dbnum", str(a.db), "-q"]
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            try:
                subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=deadline - time.perf_counter())
            except subprocess.TimeoutExpired:
                pass  # subprocess.run killed it: the time is up
    load_end = time.perf_counter()
    cpu1 = {name: proc_cpu_ticks(pid) for name, pid in pids}
    stats1 = src.info("stats")
    end_offset = int(src.info("replication")["master_repl_offset"])
    # The probes go on for a second, so the samples at the end of the load are resolved
    # as those before them were (not by the once-a-second ACK).
    time.sleep(1.0 if a.probe else 0)
    stop_probes.set()

    # Catch-up: the acknowledged offset must reach the master's offset at the end of the
    # load. Without GETACKs (from here on) the ferry acknowledges once a second.
    caught_up_at = None
    limit = time.perf_counter() + a.catchup
    while time.perf_counter() < limit:
        if samples and samples[-1][0] > load_end and (samples[-1][2] or 0) >= end_offset:
            caught_up_at = samples[-1][0]
            break
        time.sleep(a.interval)
    replica_alive = proc_cpu_ticks(a.replica_pid) is not None
    if caught_up_at is None and replica_alive:
        last = samples[-1] if samples else (0, 0, 0)
        why = (f"the acknowledged offset stopped at {last[2]}, {end_offset - (last[2] or 0)} bytes short of the "
               f"master's offset at the end of the load ({end_offset}), {a.catchup:.0f} s after the load ended")
        stop_sampling.set()
        capture_evidence(a, a.dst, why)
    stop_sampling.set()
    for t in threads:
        t.join(timeout=10)
    hwm = proc_status(a.replica_pid, "VmHWM")

    # Lag of each sample taken during the load: the time until the acknowledged offset
    # first reached that sample's master offset (None: it never did).
    lags, offset_lags = [], []
    j = 0
    unresolved = 0
    during = [s for s in samples if load_start <= s[0] <= load_end]
    for t, moff, _ in during:
        while j < len(samples) and (samples[j][0] < t or (samples[j][2] or 0) < moff):
            j += 1
        if j < len(samples):
            lags.append(samples[j][0] - t)
        else:
            unresolved += 1
    for _, moff, ack in during:
        if ack is not None:
            offset_lags.append(moff - ack)

    keys_src = keyspace(Redis(a.src).info("keyspace"))
    keys_dst = keyspace(Redis(a.dst).info("keyspace")) if replica_alive else {}
    wall = load_end - load_start
    hz = os.sysconf("SC_CLK_TCK")
    cpu = {}
    for name in cpu0:
        if cpu0[name] is not None and cpu1[name] is not None:
            cpu[name] = 100 * (cpu1[name] - cpu0[name]) / hz / wall
    if a.samples:
        with open(a.samples, "w") as f:
            f.write("# t (s from the load's start)\tmaster_repl_offset\tacknowledged offset\n")
            for t, moff, ack in samples:
                f.write(f"{t - load_start:.3f}\t{moff}\t{ack}\n")
            f.write(f"# load ended at {load_end - load_start:.3f} s; master offset then {end_offset}\n")
            for t, d, n, incr in probes:
                f.write(f"# probe at {t - load_start:.3f} s: INCR took {incr * 1000:.1f} ms, "
                        f"then WAIT {d * 1000:.1f} ms, {n} replica(s)\n")
    # A WAIT that timed out counts as its timeout (a lower bound).
    in_wait = [d if n else PROBE_TIMEOUT_MS / 1000 for _, d, n, _ in probes]
    result = {
        "applier": a.kind,
        "load_seconds": wall,
        "benchmark_runs": runs,
        "commands_per_s": (int(stats1["total_commands_processed"]) - int(stats0["total_commands_processed"])) / wall,
        "stream_mb_per_s": ((during[-1][1] - during[0][1]) / 1e6 / (during[-1][0] - during[0][0])) if len(during) > 1 else None,
        "samples": len(during),
        "lag_ms": {k: (v * 1000 if v is not None else None) for k, v in
                   (("p50", pct(lags, 50)), ("p99", pct(lags, 99)), ("max", max(lags) if lags else None))},
        "unresolved_samples": unresolved,
        "offset_lag_bytes": {"p50": pct(offset_lags, 50), "p99": pct(offset_lags, 99),
                             "max": max(offset_lags) if offset_lags else None},
        "probe_ms": ({"n": len(probes), "timeouts": sum(1 for p in probes if not p[2]),
                      "over_100": sum(1 for d in in_wait if d >= 0.1),
                      "p50": pct(in_wait, 50) * 1000 if in_wait else None,
                      "p99": pct(in_wait, 99) * 1000 if in_wait else None,
                      "max": max(in_wait) * 1000 if in_wait else None} if a.probe else None),
        "cpu_pct": cpu,
        "replica_rss_kib_max_during_load": max(rss) if rss else None,
        "replica_hwm_kib": hwm,
        "end_offset": end_offset,
        "caught_up": caught_up_at is not None,
        "catchup_s": (caught_up_at - load_end) if caught_up_at is not None else None,
        "replica_alive": replica_alive,
        "keys_source": fmt_keyspace(keys_src),
        "keys_destination": fmt_keyspace(keys_dst),
        "keys_equal": keys_src == keys_dst,
        "errors": errors,
    }
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    lag = result["lag_ms"]
    def ms(v):
        return "-" if v is None else f"{v:.1f}"
    probe = result["probe_ms"]
    print(f"lag: {len(during)} samples, acknowledged-offset lag p50 / p99 / max {ms(lag['p50'])} / {ms(lag['p99'])} / "
          f"{ms(lag['max'])} ms" + (f"; WAIT probe {ms(probe['p50'])} / {ms(probe['p99'])} / {ms(probe['max'])} ms"
                                     if probe else "") +
          f"; caught up: {result['caught_up']}; keys equal: {result['keys_equal']}", file=sys.stderr)


# --- the report -------------------------------------------------------------------------


def cmd_report(args):
    rows = [json.loads(line) for line in open(args[0]) if line.strip()]
    meta = json.load(open(args[1]))
    size = meta["rdb_bytes"]
    ver = meta["version"]
    rss_limit = 64e6  # the issue's 64 MB, MB = 10^6 bytes
    labels = {
        "native": (f"native replication: `{meta['replicaof']}`, until `master_link_status:up` ({ver})", "native"),
        "ferry2": ("`redis-ferry sync --exit-when-synced` (2 target connections, the default)", "native"),
        "ferry1": ("`redis-ferry sync --exit-when-synced --target-connections 1`", "native"),
        "check": (f"`{meta['checker']} FILE` ({meta['checker_version']})", "check"),
        "summary": ("`redis-ferry decode FILE --format summary`", "check"),
        "jsonl": ("`redis-ferry decode FILE --format jsonl -o /dev/null`", "check"),
        "verify_servers": ("`redis-ferry verify --deep --source URL --target URL` (after a restore)", "keys"),
        "verify_file": ("`redis-ferry verify --deep --rdb FILE --target URL` (the same destination)", "keys"),
    }
    med, runs, rss = {}, {}, {}
    for kind in labels:
        ws = [r["wall_s"] for r in rows if r["kind"] == kind]
        if not ws:
            continue
        med[kind] = statistics.median(ws)
        runs[kind] = ws
        ks = [r["rss_kib"] for r in rows if r["kind"] == kind and r.get("rss_kib")]
        rss[kind] = max(ks) / 1024 if ks else None
    out = []
    if med:
        out += [
            "| command | median wall (s) | runs (s) | MB/s | peak RSS (MiB) | ratio | target |",
            "|---|---:|---|---:|---:|---:|---|",
        ]
        for kind, (label, ref) in labels.items():
            if kind not in med:
                continue
            m = med[kind]
            ratio, target = "", ""
            if kind in ("ferry2", "ferry1") and "native" in med:
                x = m / med["native"]
                ratio = f"{x:.2f}x native's time"
                target = f"<= 1.1x: {'met' if x <= 1.1 else 'MISSED'}"
            elif kind in ("summary", "jsonl") and "check" in med:
                x = med["check"] / m
                ratio = f"{x:.2f}x faster"
                target = f">= 5x: {'met' if x >= 5 else 'MISSED'}"
            elif ref == "keys" and meta.get("keys"):
                x = meta["keys"] / m
                ratio = f"{x / 1000:.0f}k keys/s"
                target = f">= 100k keys/s: {'met' if x >= 100e3 else 'MISSED'}"
            if kind not in ("native", "check") and rss.get(kind) is not None:
                ok = rss[kind] * 1024 * 1024 <= rss_limit
                target += ("; " if target else "") + f"RSS <= 64 MB: {'met' if ok else 'MISSED'}"
            r = f"{rss[kind]:.1f}" if rss.get(kind) is not None else "-"
            out.append(f"| {label} | {m:.3f} | {', '.join(f'{w:.2f}' for w in runs[kind])} | "
                       f"{size / 1e6 / m:.1f} | {r} | {ratio or '1.00x'} | {target or 'reference'} |")
    lags = [r for r in rows if r["kind"] == "lag"]
    if lags:
        def f(v, spec=".0f"):
            return "-" if v is None else format(v, spec)
        out += [
            "",
            f"Stream replay under `redis-benchmark -P 16 -t set,lpush,hset -r 100000 -d 100` "
            f"({meta['lag_seconds']} s per round, into db {meta['lag_db']}; the native replica under the same load "
            f"for comparison):",
            "",
            "| round | replica | source cmds/s | stream MB/s | WAIT probe p50 / p99 / max (ms) | ACK lag p50 / p99 / max (ms) "
            "| offset lag p50 / p99 / max (bytes) | CPU: source / replica / destination | replica RSS max (MiB) "
            "| caught up after load | exit after SIGTERM |",
            "|---:|---|---:|---:|---|---|---|---|---:|---|---:|",
        ]
        for r in sorted(lags, key=lambda r: (r["round"], r["applier"] != "native")):
            l, o, pr = r["lag_ms"], r["offset_lag_bytes"], r.get("probe_ms")
            if pr and not pr["n"]:
                pr = None
            probe = f"{f(pr['p50'], '.1f')} / {f(pr['p99'], '.1f')} / {f(pr['max'], '.1f')}" if pr else "off"
            if r.get("errors"):
                probe += " (" + "; ".join(r["errors"]) + ")"
            if pr and pr["timeouts"]:
                probe += f" ({pr['timeouts']} of {pr['n']} timed out at 10 s)"
            cpu = r["cpu_pct"]
            native = r["applier"] == "native"
            rssm = r.get("replica_rss_kib_max_during_load")
            cu = f"yes, {r['catchup_s']:.2f} s" if r["caught_up"] else "**NO** (see evidence)"
            out.append(
                f"| {r['round']} | {'native' if native else 'redis-ferry'} | {r['commands_per_s']:,.0f} | "
                f"{f(r['stream_mb_per_s'], '.1f')} | {probe} | {f(l['p50'])} / {f(l['p99'])} / {f(l['max'])}"
                f"{' (+' + str(r['unresolved_samples']) + ' never)' if r['unresolved_samples'] else ''} | "
                f"{f(o['p50'], ',.0f')} / {f(o['p99'], ',.0f')} / {f(o['max'], ',.0f')} | "
                f"{f(cpu.get('source'))}% / {f(cpu.get('replica'))}% / {'-' if native else f(cpu.get('destination')) + '%'} | "
                f"{'-' if native else f(rssm / 1024 if rssm else None, '.1f')} | {cu} | {'-' if native else r['exit']} |")
        out.append("")
        for who in ("ferry", "native"):
            rs = [r for r in lags if r["applier"] == who]
            if not rs:
                continue
            probe = all(r.get("probe_ms") and r["probe_ms"]["n"] for r in rs)
            key = "probe_ms" if probe else "lag_ms"
            worst = max((r[key]["max"] if r[key]["max"] is not None else float("inf")) for r in rs)
            p99 = max((r[key]["p99"] if r[key]["p99"] is not None else float("inf")) for r in rs)
            p50 = statistics.median(r[key]["p50"] if r[key]["p50"] is not None else float("inf") for r in rs)
            what = "WAIT probe" if probe else "acknowledged-offset lag"
            over = ""
            if probe and all("over_100" in r["probe_ms"] for r in rs):
                over = (f" ({sum(r['probe_ms']['over_100'] for r in rs)} of {sum(r['probe_ms']['n'] for r in rs)} "
                        f"probes at 100 ms or more)")
            if who == "ferry":
                out.append(f"- redis-ferry, {what}: median p50 {p50:.1f} ms, worst p99 {p99:.0f} ms, max {worst:.0f} ms"
                           f"{over}; target (< 100 ms under load) on the max: {'met' if worst < 100 else 'MISSED'}, "
                           f"on p99: {'met' if p99 < 100 else 'MISSED'}.")
            else:
                out.append(f"- Native replica, {what}: median p50 {p50:.1f} ms, worst p99 {p99:.0f} ms, "
                           f"max {worst:.0f} ms{over}.")
        if any(r.get("probe_ms") and r["probe_ms"]["n"] for r in lags):
            out.append("- The ACK lag cannot be lower than the acknowledgement cadence. Each probe's WAIT makes the "
                       "source send one `REPLCONF GETACK`, about every 100 ms, so its p50 of ~75 ms mostly shows "
                       "that cadence. The WAIT probe is the lag measure.")
        else:
            out.append("- Without WAIT probes a replica acknowledges once a second, so the ACK lag mostly shows "
                       "that period.")
    print("\n".join(out))


def main():
    if len(sys.argv) < 2:
        die(__doc__)
    name, args = sys.argv[1], sys.argv[2:]
    cmds = {"counts": cmd_counts, "gen": cmd_gen, "freeport": cmd_freeport, "busy": cmd_busy,
            "ready": cmd_ready, "idle": cmd_idle, "keyspace": cmd_keyspace, "native": cmd_native,
            "lag": cmd_lag, "report": cmd_report}
    if name not in cmds:
        die(f"bench-lib.py: unknown command {name}\n{__doc__}")
    cmds[name](args)


if __name__ == "__main__":
    main()
