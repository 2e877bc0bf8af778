"""The printed benchmark report."""


def _line(label, entry):
    return (f"  {label:<22} {entry['images_per_s']:9.2f} img/s   median {entry['seconds_median'] * 1e3:9.1f} ms"
            f"   min {entry['seconds_min'] * 1e3:9.1f} ms   spread {100 * entry['spread']:5.1f}%"
            f"   ({entry['images_per_cpu_s']:.2f} img per CPU-s)")


def _ratio_line(label, ratio):
    return (f"  {label:<22} {ratio['ratio']:.3f}x (rounds {ratio['ratio_min']:.3f}..{ratio['ratio_max']:.3f}; "
            f"from CPU time {ratio['ratio_cpu_time']:.3f}x)")


def print_report(report):
    env = report["environment"]
    print(f"== KITPose benchmark: {report['config']}  batch {report['batch']}  device {report['device']}")
    print(f"   {env['device_name']}; torch {env['torch']}, {env['threads']} thread(s); "
          f"load average {env['load_before'][0]:.2f} -> {env['load_after'][0]:.2f}; "
          f"{report['iters']} timed rounds")
    results = report["results"]
    if "train" in results:
        train = results["train"]
        print(f"-- training (forward + losses + backward + Adam), fast = {train['fast_settings']}")
        print(_line("eager fp32", train["eager_fp32"]))
        print(_line("fast", train["fast"]))
        print(_ratio_line("fast / eager", train["fast_over_eager"]))
        print("  first-step loss (same weights and CutMix draws): "
              + ", ".join(f"{k} {v:.6g}" for k, v in train["first_step_loss"].items()))
        print(f"  peak memory {train['peak_memory_mib']:.0f} MiB (both models and optimisers held); added by one "
              f"step: " + ", ".join(f"{k} {v:.0f} MiB" for k, v in train["step_peak_increase_mib"].items()))
        for name, profiled in train.get("profile", {}).items():
            print(f"  profile {name}: {profiled['total_ms_per_call']:.1f} ms of operator self time per step "
                  f"under the profiler; top {len(profiled['rows'])}:")
            for op in profiled["rows"]:
                print(f"    {op['op']:<40} {op['self_ms_per_call']:8.2f} ms {100 * op['share']:5.1f}%"
                      f"   {op['calls_per_call']:6.1f} calls")
        if report["device"] == "cpu" and train["fast_settings"]["channels_last"]:
            print("  note: on CPU, channels_last training is not bit-close to eager: PyTorch's CPU BatchNorm "
                  "computes batch statistics less precisely for channels_last (TRAIN.CHANNELS_LAST stays off)")
    if "infer" in results:
        infer = results["infer"]
        print(f"-- inference (final heatmaps), fast = {infer['fast_settings']}")
        for name in ("eager_fp32", "fast", "eager_fp32_flip", "fast_flip"):
            print(_line(name, infer[name]))
        print(_ratio_line("fast / eager", infer["fast_over_eager"]))
        print(_ratio_line("flip: fast / eager", infer["fast_flip_over_eager_flip"]))
        if "max_abs_difference" in infer:
            agreement = ", ".join(f"{k} {v:.2e}" for k, v in infer["max_abs_difference"].items())
            if "kmedoids_parts_equal" in infer:
                agreement += f"; k-medoids parts equal: {infer['kmedoids_parts_equal']}"
            print(f"  max |fast - eager| in float32: {agreement}")
        if "autocast_max_abs_difference" in infer:
            autocast = infer["autocast_max_abs_difference"]
            parts = (f"; k-medoids parts equal: {infer['autocast_kmedoids_parts_equal']}"
                     if "autocast_kmedoids_parts_equal" in infer else "")
            print(f"  max |fast - eager| heatmaps under {infer['fast_settings']['amp']} autocast: "
                  f"{autocast['heatmaps']:.2e} (largest heatmap value {autocast['largest_eager_heatmap_value']:.2f})"
                  f"{parts}")
        for name, share in infer["share_of_forward"].items():
            if share:
                print(f"  share of the {name} forward: KIT head (incl. k-medoids) {100 * share['kit_head']:.2f}%, "
                      f"k-medoids {100 * share['kmedoids']:.2f}% (CPU time: {100 * share['kit_head_cpu_time']:.2f}%, "
                      f"{100 * share['kmedoids_cpu_time']:.2f}%)")
                rates = report["kit_head_rates"].get(name)
                if rates:
                    linear = (f"; its linear layers alone {100 * share['kit_head_linear_layers']:.2f}% of the "
                              f"forward time at {rates['head_linear_gmacs_per_s']:.1f} GMAC/s"
                              if "head_linear_gmacs_per_s" in rates else "")
                    print(f"    KIT head: {100 * rates['head_mac_share']:.2f}% of the multiply-adds at "
                          f"{rates['head_gmacs_per_s']:.1f} GMAC/s{linear}; rest of the forward "
                          f"{rates['rest_gmacs_per_s']:.1f} GMAC/s")
        if report.get("cpu_gemm_gmacs_per_s"):
            print(f"  oneDNN float32 GEMM 1024x2048x2048, packed weight, {report['environment']['threads']} "
                  f"thread(s): {report['cpu_gemm_gmacs_per_s']:.1f} GMAC/s")
        print(f"  peak memory {infer['peak_memory_mib']:.0f} MiB (both models held); added by one call: "
              + ", ".join(f"{k} {v:.0f} MiB" for k, v in infer["step_peak_increase_mib"].items()))
    if "data" in results:
        data = results["data"]
        print(f"-- data pipeline, training transforms ({data['source']})")
        print(f"  one worker, in process: {data['in_process_samples_per_s']:.1f} samples/s "
              f"({data['in_process_samples_per_cpu_s']:.1f} per CPU-s); one DataLoader worker process: "
              f"{data['one_worker_samples_per_s'] or float('nan'):.1f} samples/s; peak memory "
              f"{data['peak_memory_mib']:.0f} MiB")
    if "eval" in results:
        evaluation = results["eval"]
        print(f"-- evaluation (evaluate_topdown, metric {evaluation['metric']})")
        for row in evaluation["rows"]:
            print(f"  {row['instances']:6d} instances  {row['seconds']:7.3f} s  "
                  f"({1e3 * row['seconds'] / row['instances']:.2f} ms per instance)")
        if "linear_fit" in evaluation:
            fit = evaluation["linear_fit"]
            print(f"  linear fit: {fit['seconds_per_1000_instances']:.3f} s per 1000 instances + "
                  f"{fit['intercept_s']:.3f} s, R^2 {fit['r2']:.4f}; "
                  f"peak memory {evaluation['peak_memory_mib']:.0f} MiB")
    if "flops" in report:
        flops = report["flops"]
        print(f"-- FLOPs: {flops['forward_gflops_per_image']:.2f} GFLOPs per image forward (2 x MACs), "
              f"{flops['fast_forward_gflops_per_image']:.2f} on the fast path (no part maps); "
              f"peak: {report['peak_source']}")
        for name, entry in flops.items():
            if isinstance(entry, dict):
                mfu = f", MFU {100 * entry['mfu']:.1f}% of {entry['peak_tflops']:.0f} TFLOP/s" if "mfu" in entry else ""
                print(f"  {name:<22} {entry['tflops'] * 1e3:9.1f} GFLOP/s{mfu}")
    print(f"-- memory measure: {report['memory_measure']}")
    if report["targets"]:
        print("-- targets")
        for name, check in report["targets"].items():
            print(f"  [{'met' if check['met'] else 'MISSED'}] {name}: {check['value']:.3f}")
