import { describe, expect, test } from 'vitest';
import { readModelConfig, specFromConfig } from '../models/index.ts';
import type { ModelSpec } from '../models/types.ts';
import { parseMethodConfig } from './registry.ts';
import {
  editDistance,
  layerIndexOf,
  methodTargets,
  minimalTargetModules,
  nearestNames,
  resolveTargets,
  type TargetFields,
} from './targets.ts';

const load = async (name: string, opts: Parameters<typeof specFromConfig>[1] = {}): Promise<ModelSpec> =>
  specFromConfig(await readModelConfig(`engine/adapters/fixtures/configs/${name}/config.json`), opts);

const names = (spec: ModelSpec, fields: TargetFields) => resolveTargets(spec, fields).map((t) => t.name);

describe('resolveTargets (PEFT rules)', () => {
  test('a list matches names exactly or as dotted suffixes', async () => {
    const llama = await load('llama-3.2-3b');
    expect(names(llama, { targetModules: ['q_proj'] })).toHaveLength(28);
    expect(names(llama, { targetModules: ['self_attn.q_proj'] })).toHaveLength(28);
    expect(names(llama, { targetModules: ['model.layers.3.self_attn.q_proj'] })).toEqual([
      'model.layers.3.self_attn.q_proj',
    ]);
    // "proj" is not a dotted suffix of "q_proj".
    expect(() => names(llama, { targetModules: ['proj'] })).toThrow(/"proj" matches no module/);
  });

  test('a string is a full-match regex', async () => {
    const llama = await load('llama-3.2-3b');
    expect(names(llama, { targetModules: '.*layers\\.1\\d\\.self_attn\\.(q|v)_proj' })).toHaveLength(20);
    // re.fullmatch: a partial match does not count.
    expect(() => names(llama, { targetModules: 'q_proj' })).toThrow(
      /matches no module \(it must match the whole name\)/,
    );
  });

  test('all-linear: every Linear/Conv1D except the output head', async () => {
    const llama = await load('llama-3.2-3b');
    const all = names(llama, { targetModules: 'all-linear' });
    expect(all).toHaveLength(28 * 7);
    expect(all).not.toContain('lm_head');
    expect(all.some((n) => n.includes('embed'))).toBe(false);
    const gpt2 = await load('gpt2');
    expect(resolveTargets(gpt2, { targetModules: 'ALL-LINEAR' }).every((t) => t.kind === 'Conv1D')).toBe(
      true,
    );
    expect(names(gpt2, { targetModules: 'all-linear' })).toHaveLength(48);
  });

  test('all-linear for seq-cls excludes only a top-level score/classifier module', async () => {
    const llamaCls = await load('llama-3.2-3b', { task: 'seq-cls', numLabels: 3 });
    expect(names(llamaCls, { targetModules: 'all-linear' })).not.toContain('score');
    const roberta = await load('roberta-large', { task: 'seq-cls', numLabels: 3 });
    const all = names(roberta, { targetModules: 'all-linear' });
    // RoBERTa's classifier is a container: its inner Linear layers still match (PEFT behaviour).
    expect(all).toContain('classifier.dense');
    expect(all).toContain('classifier.out_proj');
    expect(all).toHaveLength(24 * 6 + 2);
  });

  test('excludeModules, layersToTransform and layersPattern', async () => {
    const llama = await load('llama-3.2-3b');
    expect(
      names(llama, { targetModules: 'all-linear', excludeModules: ['mlp.gate_proj', 'up_proj'] }),
    ).toHaveLength(28 * 5);
    expect(names(llama, { targetModules: ['q_proj'], excludeModules: '.*\\.1\\d\\..*' })).toHaveLength(18);
    expect(names(llama, { targetModules: ['q_proj', 'v_proj'], layersToTransform: [0, 27] })).toEqual([
      'model.layers.0.self_attn.q_proj',
      'model.layers.0.self_attn.v_proj',
      'model.layers.27.self_attn.q_proj',
      'model.layers.27.self_attn.v_proj',
    ]);
    expect(
      names(llama, { targetModules: ['q_proj'], layersToTransform: 5, layersPattern: 'layers' }),
    ).toEqual(['model.layers.5.self_attn.q_proj']);
    expect(() => names(llama, { targetModules: ['q_proj'], layersToTransform: 99 })).toThrow(
      /no module left/,
    );
  });

  test('PEFT default targets per architecture', async () => {
    expect(names(await load('gpt2'), {})).toHaveLength(12);
    expect(names(await load('roberta-large'), {}).slice(0, 2)).toEqual([
      'roberta.encoder.layer.0.attention.self.query',
      'roberta.encoder.layer.0.attention.self.value',
    ]);
  });

  test('a non-adaptable or unsupported module is refused', async () => {
    const llama = await load('llama-3.2-3b');
    expect(() => names(llama, { targetModules: ['input_layernorm'] })).toThrow(/is a LlamaRMSNorm/);
    expect(() =>
      resolveTargets(
        llama,
        { targetModules: ['embed_tokens'] },
        { supportedKinds: ['Linear'], method: 'vera' },
      ),
    ).toThrow(/vera adapts Linear modules only/);
  });

  test('unknown names list the nearest module names', async () => {
    const roberta = await load('roberta-large');
    expect(() => names(roberta, { targetModules: ['querry'] })).toThrow(/nearest names: query/);
  });
});

describe('target field validation', () => {
  test('layersToTransform needs a list of names; layersPattern needs layersToTransform; regexes must compile', () => {
    expect(() => parseMethodConfig('lora', { targetModules: '.*q_proj', layersToTransform: 1 })).toThrow(
      /layersToTransform cannot be used when targetModules is a regex/,
    );
    expect(() => parseMethodConfig('lora', { layersPattern: 'layers' })).toThrow(
      /layersPattern only applies/,
    );
    expect(() => parseMethodConfig('lora', { targetModules: '(' })).toThrow(/targetModules: invalid regex/);
    expect(() => parseMethodConfig('lora', { targetModules: [] })).toThrow(/give at least one module name/);
  });
});

describe('helpers', () => {
  test('layerIndexOf follows PEFT’s regexes', () => {
    expect(layerIndexOf('transformer.h.11.attn.c_attn')).toBe(11);
    expect(layerIndexOf('roberta.encoder.layer.3.attention.self.query')).toBe(3);
    expect(layerIndexOf('lm_head')).toBeNull();
    expect(layerIndexOf('model.layers.4.mlp.up_proj', 'layers')).toBe(4);
    expect(layerIndexOf('model.layers.4.mlp.up_proj', 'h')).toBeNull();
  });

  test('editDistance and nearestNames', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(nearestNames('v_prj', ['a.q_proj', 'a.v_proj', 'b.v_proj', 'a.o_proj'], 2)).toEqual([
      'v_proj',
      'o_proj',
    ]);
  });

  test('minimalTargetModules re-resolves to the same modules', async () => {
    const llama = await load('llama-3.2-3b');
    const targets = names(llama, { targetModules: 'all-linear', excludeModules: ['o_proj'] });
    const short = minimalTargetModules(
      targets,
      llama.modules.map((m) => m.name),
    );
    expect(short).toEqual(['down_proj', 'gate_proj', 'k_proj', 'q_proj', 'up_proj', 'v_proj']);
    expect(names(llama, { targetModules: short })).toEqual(targets);
  });
});

describe('methodTargets', () => {
  test("a method's default targets replace PEFT's table when targetModules is unset", async () => {
    const llama = await load('llama-3.2-3b');
    const plain = { name: 'loraxs', supportedKinds: ['Linear'] } as const;
    expect(methodTargets(llama, plain, {}).map((t) => t.name.split('.').pop())).toEqual(
      Array.from({ length: 28 }, () => ['q_proj', 'v_proj']).flat(),
    );
    const own = { ...plain, defaultTargets: (type: string) => (type === 'llama' ? ['o_proj'] : null) };
    expect(methodTargets(llama, own, {})).toHaveLength(28);
    expect(methodTargets(llama, own, {})[0].name).toBe('model.layers.0.self_attn.o_proj');
    expect(methodTargets(llama, own, { targetModules: ['k_proj'] })[0].name).toBe(
      'model.layers.0.self_attn.k_proj',
    );
    const none = { ...plain, defaultTargets: () => null };
    expect(() => methodTargets(llama, none, {})).toThrow(
      /loraxs: no default target modules for model type "llama"/,
    );
  });
});
