"""LoRA training steps of a shape checkpoint with transformers + PEFT on the CPU: the yardstick of the `shapes`
bench section (bench/sections/shapes.ts), doing the studio child's work (bench/shapes-child.ts):

- the checkpoint scripts/shapes/make_shapes.py made, loaded in --dtype (bf16 as stored, or widened to fp32);
- LoRA r 16, alpha 32, no dropout, on all-linear (PEFT keeps the adapter in fp32 on a bf16 model, as the studio);
- token ids (i * 7919 + 13) mod vocab in row-major [batch, seq] order (bench/synthetic.ts), labels = ids, so
  every token but the first is a target; transformers' mean cross entropy;
- AdamW (lr 1e-4, betas 0.9/0.999, eps 1e-8, weight decay 0.01) on the adapter, gradient norm clipped to 1;
- --checkpointing: transformers' gradient checkpointing per decoder layer (non-reentrant).

One warm-up step, then --steps timed steps (forward + backward + clip + AdamW); prints one JSON line with the
median step time and the whole process's peak RSS (VmHWM).

    python bench/peft_step.py <model-dir> --dtype bf16|fp32 --batch 4 --seq 256 --steps 3 [--checkpointing]
"""

import argparse
import json
import os
import sys
import time


def peak_rss_bytes():
    """VmHWM where /proc has it, else getrusage's maxrss (kB on Linux, bytes on macOS)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == 'darwin' else peak * 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('model_dir')
    ap.add_argument('--dtype', choices=['bf16', 'fp32'], required=True)
    ap.add_argument('--batch', type=int, required=True)
    ap.add_argument('--seq', type=int, required=True)
    ap.add_argument('--steps', type=int, default=3)
    ap.add_argument('--checkpointing', action='store_true')
    args = ap.parse_args()

    import peft
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(
        args.model_dir, dtype=torch.bfloat16 if args.dtype == 'bf16' else torch.float32
    )
    load_ms = (time.perf_counter() - t0) * 1000
    model.config.use_cache = False
    if args.checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={'use_reentrant': False})
    config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules='all-linear', task_type='CAUSAL_LM')
    model = get_peft_model(model, config)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    vocab = model.config.vocab_size
    ids = ((torch.arange(args.batch * args.seq, dtype=torch.int64) * 7919 + 13) % vocab).view(args.batch, args.seq)

    steps_ms, losses = [], []
    for step in range(args.steps + 1):
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        ms = (time.perf_counter() - t0) * 1000
        steps_ms.append(ms)
        losses.append(loss.item())
        warm = ' (warm-up)' if step == 0 else ''
        print(f'step {step}{warm}: {ms:.0f} ms, loss {loss.item():.4f}', file=sys.stderr, flush=True)
    timed = sorted(steps_ms[1:])
    print(
        json.dumps(
            {
                'torch': torch.__version__,
                'transformers': transformers.__version__,
                'peft': peft.__version__,
                'threads': torch.get_num_threads(),
                'dtype': args.dtype,
                'adapterDtype': str(trainable[0].dtype).replace('torch.', ''),
                'stepMs': timed[len(timed) // 2],
                'stepsMs': steps_ms,
                'losses': losses,
                'tokens': args.batch * args.seq,
                'loadMs': load_ms,
                'peakRssBytes': peak_rss_bytes(),
                # the base model's, as the studio reports it (the adapter apart)
                'parameters': sum(p.numel() for p in model.parameters() if not p.requires_grad),
                'trainable': sum(p.numel() for p in trainable),
            }
        )
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
