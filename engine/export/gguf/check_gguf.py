"""Reads GGUF files the studio wrote with llama.cpp's gguf-py and checks them against the merged safetensors.

Input: a JSON manifest on stdin (written by gguf.python.test.ts). Per model file: tensor names, types and shapes
must be as listed; the metadata keys llama.cpp needs must be there; every tensor dequantised with
gguf.quants.dequantize must equal the merged safetensors tensor (after the converter's Q/K permutation or
Conv1D transpose): exactly for F32, F16 (numpy's float16 rounding) and BF16 (gguf-py's quantiser), with the
Q8_0 bytes equal to gguf.quants.quantize's, and within the format's step for Q5_0/Q4_K/Q6_K. Per raw file:
gguf-py's dequantisation equals ours bit for bit (Q4_K, Q6_K, Q5_0, Q8_0). Per LoRA file:
(alpha / r) * lora_b @ lora_a (permutation undone) must equal merged - base. Prints a JSON report.
"""

import json
import sys

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader
from gguf.quants import dequantize, quantize
from safetensors.numpy import load_file


def permute(w, n_head):
    # convert_hf_to_gguf.py LlamaModel.permute with n_head already the head count of this tensor
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def load_dir(path):
    import glob
    tensors = {}
    for f in sorted(glob.glob(f'{path}/*.safetensors')):
        tensors.update(load_file(f))
    return tensors


def rewrite(values, how):
    if how is None:
        return values
    if how['kind'] == 'transpose':
        return values.T.copy()
    if how['kind'] == 'shift':
        # Gemma's norms: convert_hf_to_gguf.py adds in the checkpoint's dtype
        return (values + np.asarray(how['by'], dtype=values.dtype)).astype(values.dtype)
    if how['kind'] == 'rows':
        return values[:how['rows']]
    return permute(values, how['heads'])


def field_value(reader, key):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


REQUIRED = ['general.architecture', 'general.type', 'general.name', 'general.quantization_version',
            'general.file_type', '{a}.block_count', '{a}.context_length', '{a}.embedding_length',
            '{a}.feed_forward_length', '{a}.attention.head_count', 'tokenizer.ggml.model', 'tokenizer.ggml.pre',
            'tokenizer.ggml.tokens', 'tokenizer.ggml.token_type', 'tokenizer.ggml.eos_token_id']


def check_model(entry, problems, worst):
    r = GGUFReader(entry['path'])
    merged = load_dir(entry['merged'])
    arch = field_value(r, 'general.architecture')
    for key in REQUIRED:
        if r.fields.get(key.format(a=arch)) is None:
            problems.append(f"{entry['path']}: metadata {key.format(a=arch)} missing")
    model = field_value(r, 'tokenizer.ggml.model')
    if model == 'gpt2' and r.fields.get('tokenizer.ggml.merges') is None:
        problems.append(f"{entry['path']}: gpt2 tokenizer without merges")
    if model == 'llama' and r.fields.get('tokenizer.ggml.scores') is None:
        problems.append(f"{entry['path']}: llama tokenizer without scores")
    for k, v in entry.get('metadata', {}).items():
        got = field_value(r, k)
        if isinstance(v, float):
            ok = got is not None and abs(got - v) <= 1e-6 * max(1.0, abs(v))
        else:
            ok = got == v
        if not ok:
            problems.append(f"{entry['path']}: {k} = {got!r}, expected {v!r}")
    by_name = {t.name: t for t in r.tensors}
    listed = [t['name'] for t in entry['tensors']]
    if [t.name for t in r.tensors] != listed:
        problems.append(f"{entry['path']}: tensor order {[t.name for t in r.tensors][:4]}… != {listed[:4]}…")
    for t in entry['tensors']:
        g = by_name.get(t['name'])
        if g is None:
            problems.append(f"{entry['path']}: {t['name']} missing")
            continue
        shape = [int(x) for x in reversed(g.shape)]
        if g.tensor_type.name != t['type'] or shape != t['shape']:
            problems.append(f"{t['name']}: {g.tensor_type.name} {shape}, expected {t['type']} {t['shape']}")
            continue
        if t['source'] is None:
            continue
        expected = rewrite(merged[t['source']].astype(np.float32), t['rewrite'])
        got = dequantize(g.data, g.tensor_type).reshape(expected.shape)
        qtype = g.tensor_type
        diff = float(np.max(np.abs(got - expected))) if expected.size else 0.0
        worst[qtype.name] = max(worst.get(qtype.name, 0.0), diff)
        if qtype == Q.F32:
            ok = np.array_equal(got, expected)
        elif qtype == Q.F16:
            ok = np.array_equal(got, expected.astype(np.float16).astype(np.float32))
        elif qtype in (Q.BF16, Q.Q8_0):
            ok = np.array_equal(np.asarray(g.data).view(np.uint8).reshape(-1), quantize(expected, qtype).view(np.uint8).reshape(-1))
        else:
            block = 32 if qtype == Q.Q5_0 else 256
            amax = np.abs(expected.reshape(-1, block)).max(axis=1, keepdims=True)
            step = {Q.Q5_0: 1 / 16, Q.Q4_K: 1 / 4, Q.Q6_K: 1 / 16}[qtype]
            ok = bool(np.all(np.abs(got - expected).reshape(-1, block) <= amax * step * 1.02 + 1e-7))
        if not ok:
            problems.append(f"{t['name']} ({qtype.name}): dequantised values differ from the merged tensor by {diff:.3e}")


def check_lora(entry, problems, worst):
    r = GGUFReader(entry['path'])
    if field_value(r, 'general.type') != 'adapter' or field_value(r, 'adapter.type') != 'lora':
        problems.append(f"{entry['path']}: not marked as a LoRA adapter")
    alpha = float(field_value(r, 'adapter.lora.alpha'))
    merged = load_dir(entry['merged'])
    base = load_dir(entry['base'])
    by_name = {t.name: t for t in r.tensors}
    for m in entry['modules']:
        a = by_name[m['gguf'] + '.lora_a']
        b = by_name[m['gguf'] + '.lora_b']
        A = dequantize(a.data, a.tensor_type).reshape([int(x) for x in reversed(a.shape)])
        B = dequantize(b.data, b.tensor_type).reshape([int(x) for x in reversed(b.shape)])
        if m['heads']:
            B = unpermute(B, m['heads'])
        delta = (alpha / A.shape[0]) * (B @ A)
        ref = merged[m['source']].astype(np.float64) - base[m['source']].astype(np.float64)
        if m['conv1d']:
            ref = ref.T
        diff = float(np.max(np.abs(delta - ref)))
        worst['lora'] = max(worst.get('lora', 0.0), diff)
        if diff > 1e-5 * max(1.0, float(np.abs(ref).max())):
            problems.append(f"{m['gguf']}: (alpha/r)·B·A differs from merged − base by {diff:.3e}")


def check_raw(entry, problems):
    r = GGUFReader(entry['path'])
    by_name = {t.name: t for t in r.tensors}
    for t in entry['tensors']:
        g = by_name[t['name']]
        ours = np.fromfile(t['ours'], dtype=np.float32)
        got = dequantize(g.data, g.tensor_type).reshape(-1)
        if g.tensor_type.name != t['type'] or not np.array_equal(got, ours):
            problems.append(f"{t['name']}: gguf-py's {g.tensor_type.name} dequantisation differs from ours")


def main():
    manifest = json.load(sys.stdin)
    problems, worst = [], {}
    for entry in manifest.get('raw', []):
        check_raw(entry, problems)
    for entry in manifest['models']:
        check_model(entry, problems, worst)
    for entry in manifest.get('loras', []):
        check_lora(entry, problems, worst)
    print(json.dumps({'ok': not problems, 'problems': problems[:20], 'worst': worst}))


main()
