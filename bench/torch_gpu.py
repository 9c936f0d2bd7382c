"""PyTorch side of the GPU bench (bench/sections/gpu.ts, bench/gpu-device.sh); one JSON line on stdout per command.

  torch_gpu.py cuda                              whether torch sees a CUDA GPU
  torch_gpu.py checkpoint DIR [OVERRIDES]        a random-weight Llama-3.2-1B-shaped checkpoint (bf16), made by transformers;
                                                 OVERRIDES is JSON replacing config fields (tests make a tiny one)
  torch_gpu.py gemm SIZES                        bf16 and f32 (TF32 off) matmul TFLOP/s, e.g. 1024,2048,4096,8192
  torch_gpu.py peft DIR BATCH SEQ STEPS          LoRA r16 all-linear training tokens/s with transformers + PEFT, bf16
                                                 (on the CPU when torch sees no GPU: for testing the script only)
"""

import json
import sys
import time

# Llama-3.2-1B's configuration (meta-llama/Llama-3.2-1B config.json), written in the classic form every
# transformers generation and the studio read
LLAMA_3_2_1B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 128256,
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 64,
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0,
    "rope_scaling": {
        "factor": 32.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "hidden_act": "silu",
    "attention_bias": False,
    "mlp_bias": False,
    "tie_word_embeddings": True,
    "bos_token_id": 128000,
    "eos_token_id": 128001,
    "initializer_range": 0.02,
    "torch_dtype": "bfloat16",
}


def out(doc):
    print(json.dumps(doc), flush=True)


def cuda():
    import torch

    ok = torch.cuda.is_available()
    out({"cuda": ok, "torch": torch.__version__, "device": torch.cuda.get_device_name(0) if ok else None})


def checkpoint(path, overrides):
    import os

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    fields = {**LLAMA_3_2_1B, **overrides}
    config = LlamaConfig(**{k: v for k, v in fields.items() if k not in ("architectures", "model_type")})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.perf_counter()
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(path, safe_serialization=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(fields, f, indent=2)
    params = sum(p.numel() for p in model.parameters())
    out({"dir": path, "parameters": params, "seconds": time.perf_counter() - started})


def gemm(sizes):
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    rows = []
    for dtype, name in ((torch.bfloat16, "bf16"), (torch.float32, "f32")):
        for n in sizes:
            a = torch.randn(n, n, device="cuda", dtype=dtype)
            b = torch.randn(n, n, device="cuda", dtype=dtype)
            for _ in range(3):
                a @ b.T
            torch.cuda.synchronize()
            reps = 10
            started = time.perf_counter()
            for _ in range(reps):
                a @ b.T
            torch.cuda.synchronize()
            seconds = (time.perf_counter() - started) / reps
            rows.append({"dtype": name, "n": n, "ms": seconds * 1000, "tflops": 2 * n**3 / seconds / 1e12})
            del a, b
    out({"torch": torch.__version__, "device": torch.cuda.get_device_name(0), "rows": rows})


def peft_train(path, batch, seq, steps):
    import peft
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).to(device)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear"))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    vocab = model.config.vocab_size
    g = torch.Generator(device=device).manual_seed(0)
    times = []
    loss = float("nan")
    for step in range(steps + 2):
        ids = torch.randint(0, vocab, (batch, seq), device=device, generator=g)
        sync()
        started = time.perf_counter()
        result = model(input_ids=ids, labels=ids)
        result.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss = result.loss.item()
        sync()
        if step >= 2:
            times.append(time.perf_counter() - started)
    times.sort()
    step_seconds = times[len(times) // 2]
    out(
        {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
            "attention": model.config._attn_implementation,
            "batch": batch,
            "seq": seq,
            "stepSeconds": step_seconds,
            "tokensPerSecond": batch * seq / step_seconds,
            "trainable": trainable,
            "loss": loss,
            "peakBytes": torch.cuda.max_memory_allocated() if device == "cuda" else None,
        }
    )


def main(argv):
    command = argv[0] if argv else ""
    if command == "cuda":
        cuda()
    elif command == "checkpoint" and len(argv) in (2, 3):
        checkpoint(argv[1], json.loads(argv[2]) if len(argv) == 3 else {})
    elif command == "gemm" and len(argv) == 2:
        gemm([int(n) for n in argv[1].split(",")])
    elif command == "peft" and len(argv) == 5:
        peft_train(argv[1], int(argv[2]), int(argv[3]), int(argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
