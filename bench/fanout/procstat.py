"""CPU time and resident memory of processes, from /proc (what the SFU costs, not what it reports)."""

from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system time of the processes, all their threads included."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def runqueue_wait_seconds(pids: list[int]) -> float:
    """Time the processes' threads were runnable but waiting for a CPU (/proc/<pid>/task/<tid>/schedstat)."""
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def pin(pids: list[int], cpus: set[int], niceness: int) -> None:
    """Move every thread of the processes to cpus at this niceness (threads they start later inherit both)."""
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            os.sched_setaffinity(int(task.name), cpus)
            os.setpriority(os.PRIO_PROCESS, int(task.name), niceness)


def renice(pids: list[int], niceness: int) -> None:
    """Every thread of the processes at this niceness, on whatever cores the kernel picks."""
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            os.setpriority(os.PRIO_PROCESS, int(task.name), niceness)


_MACHINE_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def machine_cpu_seconds() -> dict[str, float]:
    """The whole machine's CPU time by kind, all cores summed, from /proc/stat.

    Softirq time is where the kernel delivers the SFU's datagrams to the
    receivers' sockets (on a veth pair, in the sender's own system call);
    this kernel's tick accounting also charges it to the process it
    interrupted, so it is part of the SFU's /proc/<pid>/stat as well. What
    the processes measured do not account for is other work on the machine;
    steal is what the hypervisor gave to other machines.
    """
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return {name: int(value) / _TICK for name, value in zip(_MACHINE_FIELDS, fields)}
