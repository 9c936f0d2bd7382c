#!/usr/bin/env python3
"""Random-weight checkpoints of the exact shapes practitioners fine-tune, saved by transformers itself.

Nothing is downloaded: each config below is the model's published config.json (architecture fields only), the
weights are transformers' own random initialisation in bfloat16 (as the hub ships them), saved with
`save_pretrained` (safetensors). The bundled demo model's byte-level BPE tokenizer (2,048 tokens) is copied in,
so the studio can tokenize its demo data for these models: every token id it produces is valid for their
vocabularies, and the logits still cover the full vocabulary.

Run:  python3 scripts/shapes/make_shapes.py <out-dir> [name ...]     (default: every shape)
Needs torch and transformers (scripts/fixtures/requirements.txt). Sizes on disk: qwen2.5-0.5b 0.99 GB,
llama-3.2-1b 2.5 GB, llama-3.2-3b 6.4 GB.
"""

import json
import os
import shutil
import sys

SHAPES = {
    # Qwen/Qwen2.5-0.5B
    'qwen2.5-0.5b': {
        'architectures': ['Qwen2ForCausalLM'],
        'model_type': 'qwen2',
        'vocab_size': 151936,
        'hidden_size': 896,
        'intermediate_size': 4864,
        'num_hidden_layers': 24,
        'num_attention_heads': 14,
        'num_key_value_heads': 2,
        'max_position_embeddings': 32768,
        'rms_norm_eps': 1e-06,
        'rope_theta': 1000000.0,
        'hidden_act': 'silu',
        'tie_word_embeddings': True,
        'use_sliding_window': False,
        'bos_token_id': 151643,
        'eos_token_id': 151643,
    },
    # meta-llama/Llama-3.2-1B
    'llama-3.2-1b': {
        'architectures': ['LlamaForCausalLM'],
        'model_type': 'llama',
        'vocab_size': 128256,
        'hidden_size': 2048,
        'intermediate_size': 8192,
        'num_hidden_layers': 16,
        'num_attention_heads': 32,
        'num_key_value_heads': 8,
        'head_dim': 64,
        'max_position_embeddings': 131072,
        'rms_norm_eps': 1e-05,
        'rope_theta': 500000.0,
        'rope_scaling': {
            'factor': 32.0,
            'high_freq_factor': 4.0,
            'low_freq_factor': 1.0,
            'original_max_position_embeddings': 8192,
            'rope_type': 'llama3',
        },
        'hidden_act': 'silu',
        'attention_bias': False,
        'mlp_bias': False,
        'tie_word_embeddings': True,
        'bos_token_id': 128000,
        'eos_token_id': 128001,
    },
    # meta-llama/Llama-3.2-3B
    'llama-3.2-3b': {
        'architectures': ['LlamaForCausalLM'],
        'model_type': 'llama',
        'vocab_size': 128256,
        'hidden_size': 3072,
        'intermediate_size': 8192,
        'num_hidden_layers': 28,
        'num_attention_heads': 24,
        'num_key_value_heads': 8,
        'head_dim': 128,
        'max_position_embeddings': 131072,
        'rms_norm_eps': 1e-05,
        'rope_theta': 500000.0,
        'rope_scaling': {
            'factor': 32.0,
            'high_freq_factor': 4.0,
            'low_freq_factor': 1.0,
            'original_max_position_embeddings': 8192,
            'rope_type': 'llama3',
        },
        'hidden_act': 'silu',
        'attention_bias': False,
        'mlp_bias': False,
        'tie_word_embeddings': True,
        'bos_token_id': 128000,
        'eos_token_id': 128001,
    },
}

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
DEMO_TOKENIZER = os.path.join(ROOT, 'assets', 'demo', 'model')


def make(name, out_dir):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    target = os.path.join(out_dir, name)
    if os.path.exists(os.path.join(target, 'config.json')):
        print(f'{name}: exists at {target}')
        return target
    torch.manual_seed(0)
    spec = dict(SHAPES[name])
    config = AutoConfig.for_model(spec.pop('model_type'), **spec)
    # the demo tokenizer's special ids (the shapes' own ids would need their own tokenizer)
    config.bos_token_id = 0
    config.eos_token_id = 0
    config.pad_token_id = 1
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    tmp = target + '.tmp'
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    for f in ('tokenizer.json', 'tokenizer_config.json'):
        shutil.copy(os.path.join(DEMO_TOKENIZER, f), os.path.join(tmp, f))
    os.replace(tmp, target)
    params = sum(p.numel() for p in model.parameters())
    print(f'{name}: {params:,} parameters -> {target}')
    return target


def main(argv):
    if not argv:
        print(__doc__)
        return 2
    out_dir = argv[0]
    names = argv[1:] or list(SHAPES)
    unknown = [n for n in names if n not in SHAPES]
    if unknown:
        print(f'unknown shape(s): {", ".join(unknown)}; known: {", ".join(SHAPES)}', file=sys.stderr)
        return 2
    os.makedirs(out_dir, exist_ok=True)
    for n in names:
        make(n, out_dir)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
