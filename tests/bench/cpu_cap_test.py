#!/usr/bin/env python3
"""bench/cpu_cap.py holds a process to its share of a CPU (bench/compare --server-cpu).

A busy loop on CPU 0 in a group capped at 30 % must get about that share, where the same loop
uncapped, right after, gets most of the CPU; the group counts the periods it held the loop back,
and it is gone after close(). Run serially (ctest RUN_SERIAL): another test on CPU 0 would take
the uncapped loop's share. Needs root, as bench/compare --server-cpu does.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from cpu_cap import cpu_cap  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
BUSY = ["taskset", "-c", "0", sys.executable, "-c", "while True: pass"]


def cpu_share(proc, seconds):
    """The share of one CPU `proc` used over `seconds` (utime + stime from /proc)."""
    def used():
        fields = open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    start, t0 = used(), time.monotonic()
    time.sleep(seconds)
    return (used() - start) / (time.monotonic() - t0)


def run(preexec_fn=None):
    proc = subprocess.Popen(BUSY, preexec_fn=preexec_fn)
    try:
        time.sleep(0.3)  # past exec and the interpreter's start
        return cpu_share(proc, 2.0)
    finally:
        proc.kill()
        proc.wait()


def main():
    try:
        cpu_cap(0)
        raise AssertionError("cpu_cap(0) was accepted")
    except ValueError:
        pass

    with cpu_cap(30, name=f"callstream-cpu-cap-test-{os.getpid()}") as cap:
        before = cap.throttled_periods()
        capped = run(cap.add_self)
        throttled = cap.throttled_periods() - before
    uncapped = run()
    print(f"cpu_cap: busy loop held to 30 %: {capped:.2f} of a CPU ({throttled} periods throttled); "
          f"uncapped: {uncapped:.2f}")
    assert 0.2 <= capped <= 0.4, f"capped share {capped:.2f}, want 0.2-0.4"
    assert uncapped >= 0.7, f"uncapped share {uncapped:.2f}: CPU 0 was not free, so the cap was not shown"
    assert throttled > 0, "the group never throttled the loop"
    assert not os.path.exists(cap.path), f"{cap.path} was not removed"
    print("ok")


if __name__ == "__main__":
    main()
