"""One LoRA training step on a GPT-2-small-shaped model in PyTorch (CPU), the yardstick for bench/sections/lora.ts.

Same work as the studio bench: 12 layers, d=768, 12 heads, vocab 50257, batch 4 x 128 tokens, random frozen
weights, LoRA r=8 (alpha 16) on attn.c_attn, causal-LM cross entropy, AdamW on the adapter only.

    python3 bench/torch_lora_step.py [--steps 3] [--batch 4] [--json] [--studio-ms 1234]

With --studio-ms it prints the ratio studio / PyTorch.
"""

import argparse
import json
import math
import os
import time

import torch
import torch.nn.functional as F

LAYERS, D, HEADS, VOCAB, POSITIONS = 12, 768, 12, 50257, 1024
BATCH, SEQ, RANK, ALPHA = 4, 128, 8, 16


class LoraConv1D(torch.nn.Module):
    """GPT-2's Conv1D (weight in x out) with a LoRA update x A^T B^T * alpha/r; base frozen."""

    def __init__(self, n_in, n_out, lora):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(n_in, n_out) * 0.02, requires_grad=False)
        self.bias = torch.nn.Parameter(torch.zeros(n_out), requires_grad=False)
        self.lora = lora
        if lora:
            self.lora_A = torch.nn.Parameter(torch.empty(RANK, n_in))
            torch.nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
            self.lora_B = torch.nn.Parameter(torch.zeros(n_out, RANK))

    def forward(self, x):
        y = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).reshape(*x.shape[:-1], -1)
        if self.lora:
            y = y + (x @ self.lora_A.t() @ self.lora_B.t()) * (ALPHA / RANK)
        return y


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = torch.nn.LayerNorm(D, eps=1e-5)
        self.c_attn = LoraConv1D(D, 3 * D, lora=True)
        self.c_proj = LoraConv1D(D, D, lora=False)
        self.ln_2 = torch.nn.LayerNorm(D, eps=1e-5)
        self.c_fc = LoraConv1D(D, 4 * D, lora=False)
        self.mlp_proj = LoraConv1D(4 * D, D, lora=False)
        for p in list(self.ln_1.parameters()) + list(self.ln_2.parameters()):
            p.requires_grad_(False)

    def forward(self, x, mask):
        b, t, _ = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(D, dim=2)
        heads = lambda z: z.view(b, t, HEADS, D // HEADS).transpose(1, 2)  # noqa: E731
        q, k, v = heads(q), heads(k), heads(v)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(D // HEADS)
        att = att.masked_fill(mask[:t, :t] == 0, torch.finfo(att.dtype).min).softmax(-1)
        a = (att @ v).transpose(1, 2).reshape(b, t, D)
        x = x + self.c_proj(a)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt2(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = torch.nn.Parameter(torch.randn(VOCAB, D) * 0.02, requires_grad=False)
        self.wpe = torch.nn.Parameter(torch.randn(POSITIONS, D) * 0.01, requires_grad=False)
        self.h = torch.nn.ModuleList(Block() for _ in range(LAYERS))
        self.ln_f = torch.nn.LayerNorm(D, eps=1e-5)
        for p in self.ln_f.parameters():
            p.requires_grad_(False)
        self.register_buffer("mask", torch.tril(torch.ones(POSITIONS, POSITIONS)))

    def forward(self, ids):
        x = self.wte[ids] + self.wpe[: ids.shape[1]]
        for block in self.h:
            x = block(x, self.mask)
        return self.ln_f(x) @ self.wte.t()  # tied lm_head


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--studio-ms", type=float, default=None)
    ap.add_argument("--batch", type=int, default=BATCH)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    model = Gpt2()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.01)
    ids = (torch.arange(args.batch * SEQ) * 7919 + 13).remainder(VOCAB).view(args.batch, SEQ)
    step_ms, fwd_ms = [], []
    for step in range(args.steps + 1):
        t0 = time.perf_counter()
        with torch.no_grad():
            model(ids)
        t1 = time.perf_counter()
        logits = model(ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        if step > 0:  # step 0 warms up
            fwd_ms.append((t1 - t0) * 1000)
            step_ms.append((t2 - t1) * 1000)
    step = sorted(step_ms)[len(step_ms) // 2]
    fwd = sorted(fwd_ms)[len(fwd_ms) // 2]
    result = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "trainable": sum(p.numel() for p in trainable),
        "step_ms": step,
        "forward_ms": fwd,
        "loss": loss.item(),
    }
    if args.studio_ms:
        result["studio_over_torch"] = args.studio_ms / step
    if args.json:
        print(json.dumps(result))
    else:
        print(f"PyTorch {result['torch']} ({result['threads']} threads): LoRA step {step:.0f} ms, forward {fwd:.0f} ms")
        print(f"trainable parameters: {result['trainable']}")
        if args.studio_ms:
            print(f"studio / PyTorch: {result['studio_over_torch']:.2f}x")


if __name__ == "__main__":
    main()
