"""Timing and memory measurement for the benchmarks: interleaved rounds, medians, paired ratios, peaks."""
import ctypes
import ctypes.util
import resource
import statistics
import time

import torch


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_rounds(variants, rounds, warmup, device):
    """Run every variant once per round, interleaved; returns {name: {'wall': [s], 'cpu': [s]}}.

    'cpu' is this process's CPU time (all threads): on a loaded machine it moves less
    than wall time. CUDA work is synchronised before each reading.
    """
    for _ in range(warmup):
        for run in variants.values():
            run()
    times = {name: {"wall": [], "cpu": []} for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            synchronize(device)
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            synchronize(device)
            times[name]["wall"].append(time.perf_counter() - wall)
            times[name]["cpu"].append(time.process_time() - cpu)
    return times


def summarize(samples, batch):
    """Median seconds, images/s at the median, and the spread (max - min) / median."""
    wall = samples["wall"]
    median = statistics.median(wall)
    return {"seconds_median": median, "seconds_min": min(wall), "seconds_max": max(wall),
            "images_per_s": batch / median, "spread": (max(wall) - min(wall)) / median,
            "cpu_seconds_median": statistics.median(samples["cpu"]),
            "images_per_cpu_s": batch / statistics.median(samples["cpu"])}


def paired_ratio(slow, fast):
    """Median over rounds of slow/fast (wall), its range, and the same from CPU time."""
    wall = [s / f for s, f in zip(slow["wall"], fast["wall"])]
    cpu = [s / f for s, f in zip(slow["cpu"], fast["cpu"])]
    return {"ratio": statistics.median(wall), "ratio_min": min(wall), "ratio_max": max(wall),
            "ratio_cpu_time": statistics.median(cpu)}


def _release_free_heap():
    """Return freed heap pages to the OS (glibc malloc_trim), so that the resident set size
    measures what the next step allocates rather than what earlier steps left cached."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _proc_status_mib(field):
    """A memory field of /proc/self/status (Linux) in MiB, or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class PeakMemory:
    """Peak memory of one part of the benchmark, in MiB."""

    def __init__(self, device):
        self.device = device
        self.resettable = False

    def reset(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:  # "5" resets the peak resident set size (VmHWM) of this process (Linux >= 4.0)
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.resettable = True
        except OSError:
            self.resettable = False

    def current_mib(self):
        if self.device.type == "cuda":
            return torch.cuda.memory_allocated(self.device) / 2 ** 20
        return _proc_status_mib("VmRSS:") or 0.0

    def step_increase_mib(self, run):
        """Peak memory added by one call of `run` over what was held before it (activations,
        gradients, temporaries): the part that batch size, channels_last and autocast change."""
        synchronize(self.device)
        if self.device.type == "cpu":
            _release_free_heap()
        before = self.current_mib()
        self.reset()
        run()
        synchronize(self.device)
        return max(self.peak_mib() - before, 0.0)

    def peak_mib(self):
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2 ** 20
        peak = _proc_status_mib("VmHWM:")
        return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB

    def describe(self):
        if self.device.type == "cuda":
            return "torch.cuda.max_memory_allocated"
        return "peak RSS of this part (VmHWM reset)" if self.resettable else "peak RSS of the process so far"


def profile_top_ops(run, device, calls=2, rows=10):
    """torch.profiler over `calls` calls of `run`: the `rows` operators with the most self time on
    the device (CUDA) or, on the CPU, the most self CPU time, per call. Returns {'sort_by', 'calls',
    'total_ms_per_call' (every operator's self time), 'rows': [{'op', 'self_ms_per_call', 'share',
    'calls_per_call'}], 'table'} ('table' is the profiler's own printout of the same rows)."""
    from torch.profiler import ProfilerActivity, profile
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    with profile(activities=activities) as profiler:
        for _ in range(calls):
            run()
        synchronize(device)
    averages = profiler.key_averages()
    total = sum(getattr(event, key) for event in averages) or 1.0
    top = sorted(averages, key=lambda event: getattr(event, key), reverse=True)[:rows]
    return {"sort_by": key, "calls": calls, "total_ms_per_call": total / 1e3 / calls,
            "rows": [{"op": event.key, "self_ms_per_call": getattr(event, key) / 1e3 / calls,
                      "share": getattr(event, key) / total, "calls_per_call": event.count / calls}
                     for event in top],
            "table": averages.table(sort_by=key, row_limit=rows)}
