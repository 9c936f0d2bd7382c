import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli as run } from '../testing.ts';

const FIXTURES = join(import.meta.dirname, '..', '..', 'models', 'fixtures');

describe('studio inspect', () => {
  it('shows architecture, parameters, weights, tokenizer and the module tree of a folder', async () => {
    const { code, out } = await run(['inspect', join(FIXTURES, 'gpt2')]);
    expect(code).toBe(0);
    expect(out).toMatch(/architecture\s+GPT2LMHeadModel \(model_type gpt2, task causal-lm\)/);
    expect(out).toMatch(/weights\s+1 file, .* \(F32 ×/);
    expect(out).toMatch(/tokenizer\s+vocab 297/);
    expect(out).toMatch(/transformer\.h\.0\.attn\.c_attn\s+Conv1D\s+\[16, 48\]\s+816\s+Conv1D 16→48/);
    expect(out).toMatch(/lm_head .*\(output head\) \(tied to transformer\.wte\)/);
  });

  it('works from config.json alone and prints JSON', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inspect-'));
    try {
      const config = {
        model_type: 'llama',
        vocab_size: 128256,
        hidden_size: 3072,
        intermediate_size: 8192,
        num_hidden_layers: 28,
        num_attention_heads: 24,
        num_key_value_heads: 8,
        head_dim: 128,
        tie_word_embeddings: true,
      };
      await writeFile(join(dir, 'config.json'), JSON.stringify(config));
      const { code, out } = await run(['inspect', join(dir, 'config.json'), '--json']);
      expect(code).toBe(0);
      const report = JSON.parse(out);
      expect(report).toMatchObject({
        architecture: 'LlamaForCausalLM',
        numParameters: 3_212_749_824,
        weights: null,
      });
      expect(report.modules).toHaveLength(1 + 28 * 9 + 2);
      const folder = await run(['inspect', dir, '--config-only', '--task', 'seq-cls', '--num-labels', '3']);
      expect(folder.out).toMatch(/LlamaForSequenceClassification .*3 labels/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails with a one-line message naming the file', async () => {
    const { code, err } = await run(['inspect', join(FIXTURES, 'missing-model')]);
    expect(code).toBe(1);
    expect(err).toMatch(/studio inspect: .*missing-model\/config.json: file not found/);
  });
});
