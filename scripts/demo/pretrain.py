#!/usr/bin/env python3
"""Pretrains the bundled demo model: a small Llama-architecture causal LM on the KJV text.

Reads <work>/pretrain.u16 (from encode_corpus.mjs) and writes assets/demo/model/{config.json, model.safetensors,
generation_config.json} in Hugging Face layout, so the studio (and transformers) load it like any hub model.
Deterministic for a given seed on one machine; needs PyTorch on CPU (Debian: apt-get install python3-torch).
Usage: python3 scripts/demo/pretrain.py <work-dir> [schedule-steps] [stop-after] [out-dir]
The committed weights are `pretrain.py <work> 1600`: a full 1600-step cosine schedule, about 3.3 M tokens
(about 3 passes over the verse stream; 27 minutes on a 2-core machine), final training loss about 3.0.
"""
import json
import math
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 2048, "hidden_size": 128,
    "intermediate_size": 384, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 32, "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
    "rope_scaling": None, "hidden_act": "silu", "attention_bias": False, "mlp_bias": False,
    "tie_word_embeddings": True, "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 1,
    "initializer_range": 0.02, "torch_dtype": "float32", "transformers_version": "4.46.0",
}
SEQ, BATCH, SEED = 128, 16, 1611


class Llama(torch.nn.Module):
    """transformers' LlamaForCausalLM math, written out (RMSNorm, RoPE rotate_half, GQA, SwiGLU)."""

    def __init__(self, c):
        super().__init__()
        d, h, kv, hd, ff = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"], c["intermediate_size"]
        self.c = c
        p = {"model.embed_tokens.weight": (c["vocab_size"], d), "model.norm.weight": (d,)}
        for i in range(c["num_hidden_layers"]):
            pre = f"model.layers.{i}."
            p.update({pre + "self_attn.q_proj.weight": (h * hd, d), pre + "self_attn.k_proj.weight": (kv * hd, d),
                      pre + "self_attn.v_proj.weight": (kv * hd, d), pre + "self_attn.o_proj.weight": (d, h * hd),
                      pre + "mlp.gate_proj.weight": (ff, d), pre + "mlp.up_proj.weight": (ff, d),
                      pre + "mlp.down_proj.weight": (d, ff), pre + "input_layernorm.weight": (d,),
                      pre + "post_attention_layernorm.weight": (d,)})
        self.names = list(p)
        self.params = torch.nn.ParameterList()
        for name, shape in p.items():
            t = torch.ones(shape) if len(shape) == 1 else torch.randn(shape) * c["initializer_range"]
            self.params.append(torch.nn.Parameter(t))
        self.w = dict(zip(self.names, self.params))
        inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2).float() / hd))
        freqs = torch.outer(torch.arange(c["max_position_embeddings"]).float(), inv)
        emb = torch.cat([freqs, freqs], dim=-1)
        self.cos, self.sin = emb.cos(), emb.sin()

    def rms(self, x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.c["rms_norm_eps"]))

    @staticmethod
    def rotate_half(x):
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([-x2, x1], dim=-1)

    def forward(self, ids):
        c, w = self.c, self.w
        b, t = ids.shape
        h, kv, hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        x = w["model.embed_tokens.weight"][ids]
        cos, sin = self.cos[:t], self.sin[:t]
        mask = torch.full((t, t), float("-inf")).triu(1)
        for i in range(c["num_hidden_layers"]):
            pre = f"model.layers.{i}."
            y = self.rms(x, w[pre + "input_layernorm.weight"])
            q = (y @ w[pre + "self_attn.q_proj.weight"].T).view(b, t, h, hd).transpose(1, 2)
            k = (y @ w[pre + "self_attn.k_proj.weight"].T).view(b, t, kv, hd).transpose(1, 2)
            v = (y @ w[pre + "self_attn.v_proj.weight"].T).view(b, t, kv, hd).transpose(1, 2)
            q = q * cos + self.rotate_half(q) * sin
            k = k * cos + self.rotate_half(k) * sin
            k = k.repeat_interleave(h // kv, dim=1)
            v = v.repeat_interleave(h // kv, dim=1)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask
            o = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, t, h * hd)
            x = x + o @ w[pre + "self_attn.o_proj.weight"].T
            y = self.rms(x, w[pre + "post_attention_layernorm.weight"])
            g = F.silu(y @ w[pre + "mlp.gate_proj.weight"].T) * (y @ w[pre + "mlp.up_proj.weight"].T)
            x = x + g @ w[pre + "mlp.down_proj.weight"].T
        x = self.rms(x, w["model.norm.weight"])
        return x @ w["model.embed_tokens.weight"].T


def write_safetensors(path, tensors):
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name in sorted(tensors):
        data = tensors[name].detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for blob in blobs:
            f.write(blob)
    tmp.rename(path)


def main():
    work = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/adapter-studio-demo")
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 1600
    stop_after = int(sys.argv[3]) if len(sys.argv) > 3 else steps
    out = Path(sys.argv[4]) if len(sys.argv) > 4 else ROOT / "assets/demo/model"
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    ids = torch.from_numpy(np.fromfile(work / "pretrain.u16", dtype="<u2").astype(np.int64))
    model = Llama(CONFIG)
    decay = [p for n, p in zip(model.names, model.params) if p.dim() == 2]
    no_decay = [p for n, p in zip(model.names, model.params) if p.dim() == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=3e-3, betas=(0.9, 0.95))
    warmup = 60
    gen = torch.Generator().manual_seed(SEED)
    start = time.time()
    for step in range(stop_after):
        lr = 3e-3 * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for group in opt.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, len(ids) - SEQ - 1, (BATCH,), generator=gen)
        batch = torch.stack([ids[s:s + SEQ + 1] for s in starts])
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, CONFIG["vocab_size"]), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 25 == 0 or step == stop_after - 1:
            print(f"step {step} loss {loss.item():.4f} lr {lr:.2e} {time.time() - start:.0f}s", flush=True)
        if (step + 1) % 100 == 0 or step == stop_after - 1:
            save(model, out)
    print(f"wrote the model after {stop_after} steps in {time.time() - start:.0f}s, final loss {loss.item():.4f}")


def save(model, out):
    """Writes the weights in Hugging Face layout (tied lm_head omitted, as transformers saves it)."""
    out.mkdir(parents=True, exist_ok=True)
    write_safetensors(out / "model.safetensors", {n: p for n, p in zip(model.names, model.params)})
    (out / "config.json").write_text(json.dumps(CONFIG, indent=2) + "\n")
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 1, "do_sample": False, "max_new_tokens": 32}, indent=2) + "\n")


if __name__ == "__main__":
    main()
