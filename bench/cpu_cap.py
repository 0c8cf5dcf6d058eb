"""Holds processes to a share of one CPU: a cgroup with CFS bandwidth control.

Used by `bench/compare --server-cpu PCT`. Why: bench/compare runs the server on CPU 0 and
callstream-load on CPU 1. On loopback the sender of a segment pays for its delivery, so the
generator does at least the socket work of the server it drives, and a server as cheap as c-floor
outruns it: the generator, not the server, ends the search for max streams, and the figure is
only a lower bound. A server held to a fraction of its CPU reaches its own limit first, on the
same terms for every server, while the generator keeps a whole CPU.

How: cgroup v2 (cpu.max) where the unified hierarchy offers the cpu controller, else cgroup v1
(cpu.cfs_quota_us over cpu.cfs_period_us). Periods are 10 ms, so a server that has used its
quota waits at most the rest of one period, under the 20 ms p99 bound of a max-streams search.
CFS bandwidth holds normal-priority tasks only: a capped process must not run SCHED_FIFO.

Needs root (it writes under /sys/fs/cgroup); when it cannot, the constructor raises RuntimeError
saying what is missing. Every process put in the group, and each thread it starts, is held
together. close() removes the group once its processes have exited.
"""
import os

PERIOD_US = 10_000
V2_ROOT = "/sys/fs/cgroup"
V1_ROOT = "/sys/fs/cgroup/cpu"


def _read(path):
    with open(path) as f:
        return f.read()


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


class cpu_cap:
    def __init__(self, percent, name=None):
        if not 1 <= percent <= 100:
            raise ValueError(f"a CPU share is 1-100 %, not {percent}")
        self.percent = percent
        self.quota_us = int(PERIOD_US * percent / 100)
        name = name or f"callstream-bench-{os.getpid()}"
        try:
            controllers = os.path.join(V2_ROOT, "cgroup.controllers")
            if os.path.exists(controllers) and "cpu" in _read(controllers).split():
                subtree = os.path.join(V2_ROOT, "cgroup.subtree_control")
                if "cpu" not in _read(subtree).split():
                    _write(subtree, "+cpu")
                self.path = os.path.join(V2_ROOT, name)
                os.makedirs(self.path, exist_ok=True)
                _write(os.path.join(self.path, "cpu.max"), f"{self.quota_us} {PERIOD_US}")
            elif os.path.exists(os.path.join(V1_ROOT, "cpu.cfs_quota_us")):
                self.path = os.path.join(V1_ROOT, name)
                os.makedirs(self.path, exist_ok=True)
                _write(os.path.join(self.path, "cpu.cfs_period_us"), str(PERIOD_US))
                _write(os.path.join(self.path, "cpu.cfs_quota_us"), str(self.quota_us))
            else:
                raise RuntimeError("no cgroup cpu controller under /sys/fs/cgroup "
                                   "(the kernel needs CONFIG_CFS_BANDWIDTH)")
        except OSError as e:
            raise RuntimeError(f"cannot make a CPU-capped cgroup ({e}): run as root "
                               "with /sys/fs/cgroup writable") from e

    def add(self, pid):
        """Moves process `pid` (all its threads) into the group."""
        _write(os.path.join(self.path, "cgroup.procs"), str(pid))

    def add_self(self):
        """For Popen(preexec_fn=...): the child joins before it execs the server."""
        self.add(os.getpid())

    def throttled_periods(self):
        """Periods in which the group used up its quota and waited (cpu.stat nr_throttled)."""
        for line in _read(os.path.join(self.path, "cpu.stat")).splitlines():
            key, _, value = line.partition(" ")
            if key == "nr_throttled":
                return int(value)
        return None

    def close(self):
        try:
            os.rmdir(self.path)
        except OSError:
            pass  # a process still in it (killed, not yet reaped): the kernel keeps the group

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
