import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { useTestBackend } from '../../backends/testing.ts';
import { attachAdapter, detachAdapter } from '../attach.ts';
import {
  baseOutput,
  fakeModel,
  layerOutput,
  maxAbsDiff,
  randomAdaptableLayer,
  randomInput,
  randomizeVariables,
} from '../testing.ts';
import type { PeftContext } from '../types.ts';
import { loraFromPeft, loraToPeft } from './export.ts';
import { loraLayers } from './index.ts';

beforeAll(async () => {
  await useTestBackend();
});

function gpt2Like() {
  const wte = randomAdaptableLayer('Embedding', 11, 6, { name: 'transformer.wte', seed: 1 });
  const attn = randomAdaptableLayer('Conv1D', 6, 18, { name: 'transformer.h.0.attn.c_attn', seed: 2 });
  const proj = randomAdaptableLayer('Conv1D', 6, 6, { name: 'transformer.h.0.attn.c_proj', seed: 3 });
  return fakeModel([wte, attn, proj], { modelType: 'gpt2', architecture: 'GPT2LMHeadModel' });
}

const ctxOf = (
  model: ReturnType<typeof gpt2Like>,
  instance: { layers: ReadonlyMap<string, unknown> },
): PeftContext => ({
  baseModelNameOrPath: 'gpt2',
  taskType: 'CAUSAL_LM',
  targets: [...instance.layers.keys()].map((name) => {
    const l = model.layers.get(name)!;
    return { name, kind: l.kind, inFeatures: l.inFeatures, outFeatures: l.outFeatures };
  }),
  moduleNames: [...model.layers.keys()],
});

describe('LoRA PEFT format', () => {
  test('keys, shapes and adapter_config follow PEFT (Conv1D → fan_in_fan_out, Embedding keys, DoRA magnitude)', () => {
    const model = gpt2Like();
    const instance = attachAdapter(model, 'lora', {
      r: 2,
      loraAlpha: 4,
      useDora: true,
      targetModules: ['wte', 'c_attn'],
    });
    const { adapterConfig, tensors } = loraToPeft(instance, ctxOf(model, instance));
    const shapes = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, t.shape]));
    expect(shapes).toEqual({
      'base_model.model.transformer.wte.lora_embedding_A': [2, 11],
      'base_model.model.transformer.wte.lora_embedding_B': [6, 2],
      'base_model.model.transformer.wte.lora_magnitude_vector': [6],
      'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight': [2, 6],
      'base_model.model.transformer.h.0.attn.c_attn.lora_B.weight': [18, 2],
      'base_model.model.transformer.h.0.attn.c_attn.lora_magnitude_vector': [18],
    });
    expect(adapterConfig).toMatchObject({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: 'gpt2',
      r: 2,
      lora_alpha: 4,
      lora_dropout: 0,
      use_dora: true,
      use_rslora: false,
      fan_in_fan_out: true,
      bias: 'none',
      init_lora_weights: true,
      inference_mode: true,
      target_modules: ['wte', 'c_attn'],
      rank_pattern: {},
      alpha_pattern: {},
    });
    tf.dispose(Object.values(tensors));
    model.dispose();
  });

  test('toPeft → fromPeft → attach + loadState reproduces the outputs', () => {
    const model = gpt2Like();
    const instance = attachAdapter(model, 'lora', {
      r: 3,
      loraAlpha: 5,
      useRslora: true,
      targetModules: 'all-linear',
    });
    randomizeVariables(instance.trainable().map((t) => t.variable));
    const attn = model.layers.get('transformer.h.0.attn.c_attn')!;
    const x = randomInput(attn, 3);
    const y = layerOutput(attn, x);
    const { adapterConfig, tensors } = loraToPeft(instance, ctxOf(model, instance));
    expect(adapterConfig.target_modules).toEqual([
      'transformer.h.0.attn.c_attn',
      'transformer.h.0.attn.c_proj',
    ]);
    detachAdapter(model, 'default');

    const { config, state } = loraFromPeft(JSON.parse(JSON.stringify(adapterConfig)), tensors);
    expect(Object.keys(state)).toContain('transformer.h.0.attn.c_attn.lora_A.weight');
    const again = attachAdapter(model, 'lora', config, { adapterName: 'loaded' });
    again.loadState(state);
    const y2 = layerOutput(attn, x);
    expect(maxAbsDiff(y2, y)).toBe(0);
    tf.dispose([x, y, y2, ...Object.values(tensors)]);
    model.dispose();
  });

  test('PiSSA exports as [A; A₀], [B, −B₀] with r·2 and alpha·2, applying to the ORIGINAL weights', () => {
    for (const useRslora of [false, true]) {
      const model = gpt2Like();
      const attn = model.layers.get('transformer.h.0.attn.c_attn')!;
      const original = attn.weight.toTensor();
      const instance = attachAdapter(model, 'lora', {
        r: 2,
        loraAlpha: 3,
        useRslora,
        initLoraWeights: 'pissa',
        targetModules: ['c_attn'],
      });
      randomizeVariables(
        instance.trainable().map((t) => t.variable),
        4,
        0.1,
      );
      const x = randomInput(attn, 3);
      const adapted = layerOutput(attn, x);
      const { adapterConfig, tensors } = loraToPeft(instance, ctxOf(model, instance));
      expect(adapterConfig).toMatchObject({ r: 4, init_lora_weights: true });
      expect(adapterConfig.lora_alpha).toBeCloseTo(useRslora ? 3 * Math.SQRT2 : 6, 10);
      detachAdapter(model, 'default');
      expect(maxAbsDiff(attn.weight.toTensor(), original)).toBeLessThan(1e-5);

      const { config, state } = loraFromPeft(adapterConfig, tensors);
      const plain = attachAdapter(model, 'lora', config, { adapterName: 'plain' });
      plain.loadState(state);
      expect(loraLayers(plain).get(attn.name)!.settings.r).toBe(4);
      const y = layerOutput(attn, x);
      expect(maxAbsDiff(y, adapted)).toBeLessThan(1e-4);
      const base = baseOutput(attn, x);
      expect(maxAbsDiff(y, base)).toBeGreaterThan(1e-3);
      tf.dispose([original, x, adapted, y, base, ...Object.values(tensors)]);
      model.dispose();
    }
  });

  test('fromPeft refuses what it cannot reproduce, with the field named', () => {
    const base = { peft_type: 'LORA', r: 2, lora_alpha: 2, target_modules: ['q_proj'] };
    expect(() => loraFromPeft({ ...base, peft_type: 'VERA' }, {})).toThrow(
      /peft_type is "VERA", expected "LORA"/,
    );
    expect(() => loraFromPeft({ ...base, init_lora_weights: 'pissa_niter_4' }, {})).toThrow(
      /pissa_niter_4.*path_initial_model_for_weight_conversion/,
    );
    expect(() => loraFromPeft({ ...base, bias: 'all' }, {})).toThrow(/bias = "all"/);
    expect(loraFromPeft({ ...base, modules_to_save: ['score'] }, {}).config.modulesToSave).toEqual(['score']);
    expect(() => loraFromPeft({ ...base, r: 0 }, {})).toThrow(/adapter_config.json: r: r must be at least 1/);
    const t = tf.zeros([2]);
    expect(() => loraFromPeft(base, { 'base_model.model.x.lora_C.weight': t })).toThrow(
      /unexpected LoRA tensor/,
    );
    // Older files keep `.weight` on DoRA's magnitude; eva inits load as plain LoRA.
    const { config, state } = loraFromPeft(
      { ...base, init_lora_weights: 'eva', use_dora: true },
      { 'base_model.model.q_proj.lora_magnitude_vector.weight': t },
    );
    expect(config.initLoraWeights).toBe(true);
    expect(Object.keys(state)).toEqual(['q_proj.lora_magnitude_vector']);
    t.dispose();
  });
});
