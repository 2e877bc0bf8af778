"""The printed reports of the speed benchmark (`print_benchmark`, tools/benchmark.py) and the GPU
check (`print_gpu_check`, tools/gpu_check.py), from their report dicts: one speed table, one
profile printout and one target list serve both."""
from pathlib import Path


def _verdict(passed):
    return {True: "PASS", False: "FAIL", None: "n/a "}[passed]


def _number(value, form=".2f"):
    return "-" if value is None else format(value, form)


def _percent(value):
    return "-" if value is None else f"{100 * value:.1f}%"


def _speedup(ratio, cpu_time):
    if not ratio:
        return ""
    text = f"{ratio['ratio']:.2f}x ({ratio['ratio_min']:.2f}-{ratio['ratio_max']:.2f})"
    return text + (f", CPU time {ratio['ratio_cpu_time']:.2f}x" if cpu_time else "")


def _optional(key, form):
    return lambda entry: form(entry[key]) if key in entry else None


# header, cell(entry) -> text, or None where the variant lacks the figure
SPEED_COLUMNS = (
    ("img/s", lambda entry: f"{entry['images_per_s']:.2f}"),
    ("median ms", lambda entry: f"{entry['seconds_median'] * 1e3:.1f}"),
    ("spread", lambda entry: f"{100 * entry['spread']:.1f}%"),
    ("img/CPU-s", lambda entry: f"{entry['images_per_cpu_s']:.2f}"),
    ("speed-up", lambda entry: entry["speedup"]),
    ("+MiB/call", _optional("step_peak_increase_mib", lambda value: f"{value:.0f}")),
    ("TFLOP/s", _optional("tflops", lambda value: f"{value:.3f}")),
    ("MFU peak", _optional("mfu_vs_peak", _percent)),
    ("MFU gemm", _optional("mfu_vs_bf16_gemm", _percent)),
)


def speed_table(title, variants, speedup_of, cpu_time=False):
    """One row per timed variant (`benchmarks.timing.summarize` figures and what the harness added);
    a column only where some variant has its figure. speedup_of(name): the variant's paired ratio or
    None; cpu_time: also the ratio of CPU times (meaningful where the CPU does the work)."""
    print(title)
    cells = {name: [cell(dict(entry, speedup=_speedup(speedup_of(name), cpu_time))) for _, cell in SPEED_COLUMNS]
             for name, entry in variants.items()}
    shown = [index for index in range(len(SPEED_COLUMNS)) if any(row[index] is not None for row in cells.values())]
    widths = {index: max([len(SPEED_COLUMNS[index][0])] + [len(row[index] or "-") for row in cells.values()])
              for index in shown}
    print(f"  {'variant':<28}" + "".join(f"  {SPEED_COLUMNS[index][0]:>{widths[index]}}" for index in shown)
          + "  notes")
    for name, entry in variants.items():
        notes = []
        if "compute_dtype" in entry:
            notes.append(f"computes in {entry['compute_dtype']}")
        if "first_call_s" in entry:
            notes.append(f"first call {entry['first_call_s']:.1f} s")
        print(f"  {name:<28}" + "".join(f"  {cells[name][index] or '-':>{widths[index]}}" for index in shown)
              + f"  {', '.join(notes)}".rstrip())


def print_profile(name, profile):
    """A torch.profiler table (`benchmarks.timing.profile_top_ops`) or a cProfile table of the GPU
    check's data pipeline."""
    if "error" in profile:
        print(f"-- profile of {name}: failed ({profile['error']})")
        return
    if "total_ms_per_call" in profile:
        print(f"-- profile of {name}: top {len(profile['rows'])} operators by {profile['sort_by']}, per call "
              f"({profile['calls']} calls profiled; all operators {profile['total_ms_per_call']:.1f} ms per call)")
        for row in profile["rows"]:
            print(f"  {row['op'][:60]:<60} {row['self_ms_per_call']:9.3f} ms {100 * row['share']:5.1f}% "
                  f"{row['calls_per_call']:7.1f} calls")
    else:
        print(f"-- profile of {name}: top {len(profile['rows'])} functions by {profile['sort_by']}, "
              f"per sample ({profile['samples']} samples in this process)")
        for row in profile["rows"]:
            print(f"  {row['function'][:60]:<60} {row['own_ms_per_sample']:9.3f} ms {100 * row['share']:5.1f}% "
                  f"{row['calls_per_sample']:7.1f} calls")


def print_targets(targets):
    """The records of `benchmarks.targets`: met, missed or not measured."""
    if not targets:
        return
    print("-- targets")
    for target in targets.values():
        if target["status"] == "not measured":
            print(f"  [not measured] {target['label']}: {target['reason']}")
            continue
        detail = ""
        if "consumption_img_per_s" in target:  # the GPU check's data target
            fewest = target["fewest_workers_enough"]
            detail = (f" ({target['best_samples_per_s']:.1f} samples/s with {target['best_workers']} worker(s) "
                      f"against {target['consumption_img_per_s']:.1f} img/s of {target['consumption_variant']}; "
                      f"{'fewest workers enough: ' + str(fewest) if fewest else 'no worker count timed is enough'})")
        print(f"  [{target['status']}] {target['label']}: {target['value']:.3f}{detail}")


# ---------------------------------------------------------------------------- tools/benchmark.py
def _with_step_memory(part, names):
    """The part's variants `names`, each with the memory one call adds."""
    return {name: dict(part[name], step_peak_increase_mib=part["step_peak_increase_mib"][name]) for name in names}


def print_benchmark(report):
    env = report["environment"]
    cpu_time = report["device"] == "cpu"
    print(f"== KITPose benchmark: {report['config']}  batch {report['batch']}  device {report['device']}")
    print(f"   {env['device_name']}; torch {env['torch']}, {env['torch_threads']} thread(s); "
          f"load average {env['load_before'][0]:.2f} -> {env['load_after'][0]:.2f}; "
          f"{report['iters']} timed rounds")
    results = report["results"]
    if "train" in results:
        train = results["train"]
        speed_table(f"-- training (forward + losses + backward + Adam; speed-up: paired, against eager fp32), "
                    f"fast = {train['fast_settings']}", _with_step_memory(train, ("eager_fp32", "fast")),
                    lambda name: train["fast_over_eager"] if name == "fast" else None, cpu_time)
        print("  first-step loss (same weights and CutMix draws): "
              + ", ".join(f"{k} {v:.6g}" for k, v in train["first_step_loss"].items()))
        print(f"  peak memory {train['peak_memory_mib']:.0f} MiB (both models and optimisers held)")
        if report["device"] == "cpu" and train["fast_settings"]["channels_last"]:
            print("  note: on CPU, channels_last training is not bit-close to eager: PyTorch's CPU BatchNorm "
                  "computes batch statistics less precisely for channels_last (TRAIN.CHANNELS_LAST stays off)")
    if "infer" in results:
        infer = results["infer"]
        ratios = {"fast": infer["fast_over_eager"], "fast_flip": infer["fast_flip_over_eager_flip"]}
        speed_table(f"-- inference (final heatmaps; speed-up: paired, against eager fp32 with the same flip test), "
                    f"fast = {infer['fast_settings']}",
                    _with_step_memory(infer, ("eager_fp32", "fast", "eager_fp32_flip", "fast_flip")), ratios.get,
                    cpu_time)
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
            print(f"  oneDNN float32 GEMM 1024x2048x2048, packed weight, {env['torch_threads']} "
                  f"thread(s): {report['cpu_gemm_gmacs_per_s']:.1f} GMAC/s")
        print(f"  peak memory {infer['peak_memory_mib']:.0f} MiB (both models held)")
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
    print_targets(report["targets"])
    for name, profile in results.get("train", {}).get("profile", {}).items():
        print_profile(f"training {name}", profile)


# ---------------------------------------------------------------------------- tools/gpu_check.py
def _environment(report):
    env, flops, settings = report["environment"], report.get("flops", {}), report["settings"]
    where = env["device_name"]
    if report["device"] == "cuda":
        where += (f" ({env['gpu_memory_gib']:.1f} GiB, {env['multiprocessors']} SMs), CUDA {env['cuda']}, "
                  f"cuDNN {env['cudnn']}")
    print(f"== KITPose GPU check on {report['device']}: {where}; torch {env['torch']}, python {env['python']}, "
          f"{env['cpu_count']} CPUs, {env['torch_threads']} torch thread(s)")
    print(f"   {settings['config']}; training batch {settings['batch']}, inference batch {settings['infer_batch']}, "
          f"{settings['rounds']} timed rounds after {settings['warmup']} warm-up; wall {report['wall_s']:.1f} s "
          f"(budget {settings['budget_s']:.0f} s)")
    if flops:
        peak = (f"bf16 peak {flops['bf16_peak_tflops']:.1f} TFLOP/s ({flops['peak_source']})"
                if flops["bf16_peak_tflops"] else f"bf16 peak {flops['peak_source']}")
        print(f"   forward {flops['forward_gmacs_per_image']:.3f} GMACs per image "
              f"({flops['fast_forward_gmacs_per_image']:.3f} without part maps); {peak}; measured bf16 product "
              f"{flops['bf16_gemm_size']}^3: {flops['bf16_gemm_tflops']:.2f} TFLOP/s")


def _parts(report):
    print("-- parts")
    for name, part in report["parts"].items():
        seconds = f"{part['seconds']:7.1f} s" if "seconds" in part else "         "
        detail = part.get("reason") or part.get("error") or ""
        print(f"  {name:<18} {part['status']:<15} {seconds}  {detail}")


def _correctness(part):
    checks = part["checks"]
    outputs = checks["reference_outputs"]
    print("-- correctness")
    print(f"  [{_verdict(outputs['passed'])}] tiny reference model, fp32, TF32 off: max |difference| "
          + ", ".join(f"{name} {value:.1e}" for name, value in outputs["max_abs_difference"].items())
          + f" (tolerance {outputs['tolerance']:.0e})")
    print(f"  [{_verdict(checks['reference_clusters']['passed'])}] its k-medoids parts identical to the reference")
    kmedoids = checks["kmedoids_case"]
    print(f"  [{_verdict(kmedoids['passed'])}] kmedoids_case, {kmedoids['cases']} samples: "
          + ", ".join(f"{name} {value:g}" for name, value in kmedoids["samples_differ"].items()))
    grad = checks["grad_cosine_fp32_vs_bf16"]
    print(f"  [{_verdict(grad['passed'])}] gradients of one train_step, fp32 vs bf16 autocast, {grad['batches']} "
          f"batches of {grad['batch']} ({Path(grad['config']).name}): median cosine "
          f"{_number(grad.get('cosine'), '.5f')} (>= {grad['minimum']})"
          + (f"; {grad['reason']}" if grad.get("reason") else ""))
    for state in ("trained", "initialised"):
        if state in grad:
            _gradient_agreement(state, grad[state])
    fp16 = checks["fp16_grad_scaler"]
    print(f"  [{_verdict(fp16['passed'])}] fp16 + gradient scaler, {fp16['steps']} steps: skipped updates "
          f"{fp16['skipped_in_settle_steps']} in the first {fp16['settle_steps']}, {fp16['skipped_after']} after; "
          f"final scale {fp16['scales'][-1]:g}; loss {fp16['first_loss']:.3e} -> {fp16['last_loss']:.3e}"
          + (f"; {fp16['reason']}" if fp16.get("reason") else ""))


def _gradient_agreement(state, entry):
    if not entry["finite"]:
        print(f"         {state}: a loss or gradient is not finite ({entry['per_batch'][-1]['losses']})")
        return
    batches = "; ".join(
        f"{batch['cosine']:.5f} (" + ", ".join(f"{name} {value:.5f}" for name, value in batch["cosine_per_module"].items())
        + f"; input rounded {batch['cosine_fp32_bf16_rounded_input']:.5f})" for batch in entry["per_batch"])
    print(f"         {state} (bf16 computed in {entry['compute_dtype']['bf16']}): median {entry['median_cosine']:.5f}, "
          f"lowest {entry['lowest_cosine']:.5f}; per batch {batches}; fp32 between batches "
          f"{_number(entry['fp32_cosine_between_batches'], '.3f')}")


def _ddp(part):
    checkpoint = part.get("checkpoint")
    saved = (f"checkpoint of epoch {checkpoint['epoch']} ({checkpoint['bytes'] / 1024:.0f} KiB)" if checkpoint
             else "no checkpoint")
    print(f"-- ddp  [{_verdict(part['passed'])}] torchrun --nproc_per_node 1: backend {part['backend']} (expected "
          f"{part['expected_backend']}) on {part['where']}, {part['iterations']} iterations, {saved}, "
          f"{part['wall_s']:.1f} s")
    if "output_tail" in part:
        print("  output tail:\n" + part["output_tail"])


def _training(name, part, cpu_time):
    variants = part["variants"]
    speed_table(f"-- {name} (kitpose.engine.train_step; speed-up: paired, against fp32)", variants,
                lambda variant: variants[variant].get("over_fp32"), cpu_time)
    for variant, reason in part.get("not_applicable", {}).items():
        print(f"  {variant}: not applicable ({reason})")
    if "dynamo" in part:
        dynamo = part["dynamo"]
        reasons = "".join(f"; {entry['count']}x {entry['reason']}" for entry in dynamo["break_reasons"])
        print(f"  torch.compile ({dynamo['backend']}): {dynamo['unique_graphs']} graphs, "
              f"{dynamo['graph_breaks']} graph breaks{reasons}")
    if "target_note" in part:
        print(f"  {part['target_note']}")
    print(f"  peak memory {part['peak_memory_mib']:.0f} MiB ({part['memory_measure']}; every variant's model and "
          f"optimiser held)")


def _inference(part, cpu_time):
    ratios = part["ratios"]
    pairs = {"bf16_fast": "bf16_fast_over_fp32_eager", "bf16_fast_flip": "bf16_fast_over_fp32_eager_flip",
             "fp32_fast": "fp32_fast_over_fp32_eager"}
    speed_table("-- inference (kitpose.runtime.predict_heatmaps; speed-up: paired, against fp32 eager)",
                part["variants"], lambda variant: ratios.get(pairs.get(variant)), cpu_time)
    print(f"  bf16 fast path over fp32 fast path: {ratios['bf16_fast_over_fp32_fast']['ratio']:.2f}x")
    fast, bf16 = part["checks"]["fp32_fast_vs_eager"], part["checks"]["bf16_fast_vs_fp32_eager"]
    print(f"  [{_verdict(fast['passed'])}] fp32 fast path vs eager: max |heatmap difference| "
          f"{fast['max_abs_difference']:.1e} (tolerance {fast['tolerance']:.0e}); bf16 vs fp32 eager "
          f"{bf16['max_abs_difference']:.1e} (largest heatmap value {bf16['largest_heatmap_value']:.2f})")
    print(f"  peak memory {part['peak_memory_mib']:.0f} MiB ({part['memory_measure']})")


def _data(part):
    print(f"-- data pipeline: {part['source']} (generated in {part['generate_s']:.1f} s), "
          f"{part['samples_per_pass']} samples per pass (pictures x{part['pictures_repeated']}), "
          f"batch {part['batch']}, pinned memory {part['pin_memory']}")
    for workers, rate in part["samples_per_s"].items():
        print(f"  {workers:>3} worker(s): {_number(rate, '.1f')} samples/s")


def _schedule(estimate):
    samples = f"{estimate['samples'] / 1e6:g} M samples ({Path(estimate['config']).name})"
    if estimate["status"] != "done":
        print(f"-- schedule: {samples}: not measured ({estimate['reason']})")
        return
    data = (f"data pipeline {estimate['data_samples_per_s']:.0f} samples/s with {estimate['data_workers']} workers"
            if estimate["data_samples_per_s"] else "data pipeline not measured")
    print(f"-- schedule: {samples} at {estimate['variant']}, {estimate['training_img_per_s']:.1f} img/s ({data}): "
          f"{estimate['minutes']:.1f} min, bound by the {estimate['bound']}; {estimate['goal_minutes']} min needs "
          f"{estimate['img_per_s_for_goal']:.0f} img/s ({estimate['speedup_for_goal']:.2f}x)"
          + (f"; bf16 gradient check {_verdict(estimate['bf16_gradient_check']).strip()}")
          + (f"; profile: {estimate['profile']}" if estimate["profile"] else ""))


def print_gpu_check(report):
    _environment(report)
    _parts(report)
    parts = report["parts"]
    cpu_time = report["device"] == "cpu"
    done = {name for name, part in parts.items() if part["status"] in ("done", "failed")}
    if "correctness" in done:
        _correctness(parts["correctness"])
    if "ddp" in done:
        _ddp(parts["ddp"])
    if "training" in done:
        _training("training", parts["training"], cpu_time)
    if "inference" in done:
        _inference(parts["inference"], cpu_time)
    if "data" in done:
        _data(parts["data"])
    if "training_compiled" in done:
        _training("training, compiled", parts["training_compiled"], cpu_time)
    print_targets(report["targets"])
    if "schedule" in report:
        _schedule(report["schedule"])
    for name, profile in report["profiles"].items():
        print_profile(name, profile)
