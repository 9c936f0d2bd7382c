import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../backends/testing.ts';
import { runCli } from '../cli/testing.ts';
import { checkWeights, loadModel } from './load.ts';
import { specFromConfig } from './registry.ts';

const LLAMA = join(import.meta.dirname, 'fixtures', 'transformers', 'llama');
const GPT2 = join(import.meta.dirname, 'fixtures', 'transformers', 'gpt2');

let scratch: string;

beforeAll(async () => {
  await useTestBackend();
  scratch = await mkdtemp(join(tmpdir(), 'bounds-'));
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** A copy of a fixture folder whose config.json has `changes`. */
function withConfig(fixture: string, name: string, changes: Record<string, unknown>): string {
  const dir = join(scratch, name);
  cpSync(fixture, dir, { recursive: true });
  const config = JSON.parse(readFileSync(join(fixture, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, ...changes }));
  return dir;
}

describe('sizes from config.json are bounded before anything is allocated from them', () => {
  it('studio inspect refuses num_hidden_layers 1e9 at once, naming config.json and the field', async () => {
    const heap = process.memoryUsage().heapUsed;
    for (const [fixture, field] of [
      [LLAMA, 'num_hidden_layers'],
      [GPT2, 'n_layer'],
    ]) {
      const dir = withConfig(fixture, `${field}-1e9`, { [field]: 1e9 });
      for (const target of [join(dir, 'config.json'), dir]) {
        const { code, err } = await runCli(['inspect', target]);
        expect(code).toBe(1);
        expect(err).toMatch(
          new RegExp(
            `config.json: "${field}" is 1000000000, beyond any model the engine can build \\(at most 4096\\)`,
          ),
        );
      }
    }
    expect(process.memoryUsage().heapUsed - heap).toBeLessThan(64 * 2 ** 20);
  });

  it('config-only: a parameter count beyond any loadable model is refused, blaming the field', () => {
    const config = JSON.parse(readFileSync(join(LLAMA, 'config.json'), 'utf8'));
    const huge = {
      ...config,
      num_hidden_layers: 4096,
      hidden_size: 65536,
      intermediate_size: 2 ** 20,
      head_dim: 128,
    };
    expect(() => specFromConfig(huge)).toThrow(
      /^config.json: "num_hidden_layers" \(4096\) implies [\d,]+ parameters, more than any model the engine can load \(10,000,000,000,000\)$/,
    );
    expect(() => specFromConfig({ ...config, vocab_size: 2 ** 25 })).toThrow(
      /"vocab_size" is 33554432, beyond/,
    );
    expect(() => specFromConfig(config, { task: 'seq-cls', numLabels: 1e9 })).toThrow(
      /numLabels must be an integer/,
    );
  });

  it('a config larger than its weights is refused from the safetensors headers, before any tensor is read', async () => {
    for (const [field, value] of [
      ['num_hidden_layers', 3000],
      ['vocab_size', 1_000_000],
      ['intermediate_size', 500_000],
    ] as const) {
      const dir = withConfig(LLAMA, `${field}-big`, { [field]: value });
      const message = new RegExp(
        `^config.json: "${field}" \\(${value}\\) implies [\\d,]+ parameters, more than twice the [\\d,]+ values model.safetensors holds$`,
      );
      await expect(checkWeights(dir)).rejects.toThrow(message);
      await expect(loadModel(dir)).rejects.toThrow(message);
      const { code, err } = await runCli(['inspect', dir]);
      expect(code).toBe(1);
      expect(err).toMatch(new RegExp(`config.json: "${field}" \\(${value}\\) implies`));
    }
  });
});
