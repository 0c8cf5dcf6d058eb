#pragma once
// What a run measures about processes from outside them: CPU seconds of another process (the
// server under test) from /proc/PID/stat, its resident memory from /proc/PID/status, and this
// process's own CPU from getrusage. Called from the run's control thread at window edges only.

#include <optional>
#include <sys/types.h>

namespace callstream::bench {

// utime + stime of every thread of `pid`, in seconds; nullopt when the process is gone.
std::optional<double> process_cpu_seconds(pid_t pid);
// VmRSS of `pid` in KiB; nullopt when the process is gone.
std::optional<long> process_rss_kib(pid_t pid);
// User + system CPU of this process (all threads), in seconds.
double self_cpu_seconds();
// Raises the soft open-files limit to the hard limit; returns the new soft limit.
long raise_open_files_limit();

} // namespace callstream::bench
