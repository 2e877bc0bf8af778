"""The printed report of the GPU check (`kitpose.benchmark.gpu_check`)."""

TARGET_LABELS = {
    "training_bf16_channels_last": "bf16 + channels_last training >= {threshold}x fp32 eager",
    "training_compiled": "bf16 + channels_last + compile training >= {threshold}x fp32 eager",
    "inference_bf16": "bf16 inference (fast path) >= {threshold}x fp32 eager",
    "data_over_consumption": "data pipeline (<= 12 workers) >= {threshold}x the training consumption",
}


def _verdict(passed):
    return {True: "PASS", False: "FAIL", None: "n/a "}[passed]


def _number(value, form=".2f"):
    return "-" if value is None else format(value, form)


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
    losses = grad["losses"]
    print(f"  [{_verdict(grad['passed'])}] one train_step fp32 vs bf16 autocast (batch {grad['batch']}, computed in "
          f"{grad['compute_dtype']['bf16']}): losses {losses['fp32']:.5e} / {losses['bf16']:.5e}, gradient cosine "
          f"{_number(grad['cosine'], '.5f')} (>= {grad['minimum']})"
          + (f"; {grad['reason']}" if grad.get("reason") else ""))
    if grad.get("cosine_per_module"):
        modules = ", ".join(f"{name} {value:.5f}" for name, value in grad["cosine_per_module"].items())
        print(f"         per module: {modules}; for scale, fp32 with the input rounded to bf16 once: "
              f"{grad['cosine_fp32_bf16_rounded_input']:.5f}")
    fp16 = checks["fp16_grad_scaler"]
    print(f"  [{_verdict(fp16['passed'])}] fp16 + gradient scaler, {fp16['steps']} steps: skipped updates "
          f"{fp16['skipped_in_settle_steps']} in the first {fp16['settle_steps']}, {fp16['skipped_after']} after; "
          f"final scale {fp16['scales'][-1]:g}; loss {fp16['first_loss']:.3e} -> {fp16['last_loss']:.3e}"
          + (f"; {fp16['reason']}" if fp16.get("reason") else ""))


def _ddp(part):
    checkpoint = part.get("checkpoint")
    saved = (f"checkpoint of epoch {checkpoint['epoch']} ({checkpoint['bytes'] / 1024:.0f} KiB)" if checkpoint
             else "no checkpoint")
    print(f"-- ddp  [{_verdict(part['passed'])}] torchrun --nproc_per_node 1: backend {part['backend']} (expected "
          f"{part['expected_backend']}) on {part['where']}, {part['iterations']} iterations, {saved}, "
          f"{part['wall_s']:.1f} s")
    if "output_tail" in part:
        print("  output tail:\n" + part["output_tail"])


def _speed_table(title, variants, ratio_of):
    print(title)
    print(f"  {'variant':<28} {'img/s':>9} {'median ms':>10} {'spread':>7} {'speed-up':>18} {'+MiB/call':>10} "
          f"{'TFLOP/s':>8} {'MFU peak':>9} {'MFU gemm':>9}  notes")
    for name, entry in variants.items():
        ratio = ratio_of(name)
        speedup = f"{ratio['ratio']:.2f}x ({ratio['ratio_min']:.2f}-{ratio['ratio_max']:.2f})" if ratio else ""
        mfu_peak = f"{100 * entry['mfu_vs_peak']:.1f}%" if entry["mfu_vs_peak"] is not None else "-"
        notes = []
        if "compute_dtype" in entry:
            notes.append(f"computes in {entry['compute_dtype']}")
        if "first_call_s" in entry:
            notes.append(f"first call {entry['first_call_s']:.1f} s")
        print(f"  {name:<28} {entry['images_per_s']:9.1f} {entry['seconds_median'] * 1e3:10.1f} "
              f"{100 * entry['spread']:6.1f}% {speedup:>18} {entry['step_peak_increase_mib']:10.0f} "
              f"{entry['tflops']:8.3f} {mfu_peak:>9} {100 * entry['mfu_vs_bf16_gemm']:8.1f}%  {', '.join(notes)}")


def _training(name, part):
    variants = part["variants"]
    _speed_table(f"-- {name} (kitpose.engine.train_step; speed-up: paired, against fp32)", variants,
                 lambda variant: variants[variant].get("over_fp32"))
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


def _inference(part):
    ratios = part["ratios"]
    pairs = {"bf16_fast": "bf16_fast_over_fp32_eager", "bf16_fast_flip": "bf16_fast_over_fp32_eager_flip",
             "fp32_fast": "fp32_fast_over_fp32_eager"}
    _speed_table("-- inference (kitpose.runtime.predict_heatmaps; speed-up: paired, against fp32 eager)",
                 part["variants"], lambda variant: ratios.get(pairs.get(variant)))
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


def _targets(report):
    print("-- targets")
    for name, target in report["targets"].items():
        label = TARGET_LABELS[name].format(threshold=target["threshold"])
        if target["status"] == "not measured":
            print(f"  [not measured] {label}: {target['reason']}")
            continue
        extra = ""
        if name == "data_over_consumption":
            fewest = target["fewest_workers_enough"]
            extra = (f" ({target['best_samples_per_s']:.1f} samples/s with {target['best_workers']} worker(s) against "
                     f"{target['consumption_img_per_s']:.1f} img/s of {target['consumption_variant']}; "
                     f"{'fewest workers enough: ' + str(fewest) if fewest else 'no worker count timed is enough'})")
        print(f"  [{target['status']}] {label}: {target['value']:.2f}x{extra}")


def _profiles(report):
    for name, profile in report["profiles"].items():
        if "error" in profile:
            print(f"-- profile of {name}: failed ({profile['error']})")
            continue
        if "op" in (profile["rows"][0] if profile["rows"] else {}):
            print(f"-- profile of {name}: top {len(profile['rows'])} operators by {profile['sort_by']}, "
                  f"per call ({profile['calls']} calls profiled)")
            for row in profile["rows"]:
                print(f"  {row['op'][:60]:<60} {row['self_ms_per_call']:9.3f} ms {100 * row['share']:5.1f}% "
                      f"{row['calls_per_call']:7.0f} calls")
        else:
            print(f"-- profile of {name}: top {len(profile['rows'])} functions by {profile['sort_by']}, "
                  f"per sample ({profile['samples']} samples in this process)")
            for row in profile["rows"]:
                print(f"  {row['function'][:60]:<60} {row['own_ms_per_sample']:9.3f} ms {100 * row['share']:5.1f}% "
                      f"{row['calls_per_sample']:7.1f} calls")


def print_report(report):
    _environment(report)
    _parts(report)
    parts = report["parts"]
    done = {name for name, part in parts.items() if part["status"] in ("done", "failed")}
    if "correctness" in done:
        _correctness(parts["correctness"])
    if "ddp" in done:
        _ddp(parts["ddp"])
    if "training" in done:
        _training("training", parts["training"])
    if "inference" in done:
        _inference(parts["inference"])
    if "data" in done:
        _data(parts["data"])
    if "training_compiled" in done:
        _training("training, compiled", parts["training_compiled"])
    _targets(report)
    _profiles(report)
