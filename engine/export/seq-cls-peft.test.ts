import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { attachAdapter } from '../adapters/index.ts';
import type { AdapterInstance } from '../adapters/types.ts';
import { useTestBackend } from '../backends/testing.ts';
import { trainingContext } from '../models/layers.ts';
import { loadModel } from '../models/load.ts';
import type { LoadedModel } from '../models/types.ts';
import { openSafetensors } from '../safetensors/index.ts';
import { pythonOrSkip } from '../testing/python.ts';
import { exportAdapter } from './index.ts';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from './peft.ts';
import { expectSamePeftConfig, logitsOf, PEFT_FIXTURES, peftExpected, relative } from './peft-testing.ts';

/**
 * A sequence-classification LoRA trained here (head included, as modules_to_save) exports the way PEFT saves
 * one: the same tensors and config fields as the PEFT-made `bert-cls-lora` fixture, and PEFT loads it.
 */
const BASE = join(PEFT_FIXTURES, 'bert-cls');
const PEFT_MADE = join(PEFT_FIXTURES, 'bert-cls-lora');
const { input_ids: INPUT_IDS } = peftExpected('bert-cls-lora');

let model: LoadedModel;
let instance: AdapterInstance;
let out: string;
let tmp: string;

/** A few Adam steps of cross-entropy on fixed labels, so every trainable tensor (the head too) moves. */
function train(steps: number): { first: number; last: number } {
  const ids = tf.tensor2d(INPUT_IDS, undefined, 'int32');
  const mask = tf.onesLike(ids);
  const labels = tf.oneHot(tf.tensor1d([2, 0], 'int32'), 3);
  const optimizer = tf.train.adam(0.05);
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    const cost = optimizer.minimize(
      () =>
        tf.losses.softmaxCrossEntropy(
          labels,
          model.forward(
            { inputIds: ids as tf.Tensor2D, attentionMask: mask as tf.Tensor2D },
            trainingContext(1, step),
          ),
        ) as tf.Scalar,
      true,
      instance.trainable().map((p) => p.variable),
    );
    losses.push(cost!.dataSync()[0]);
    cost!.dispose();
  }
  optimizer.dispose();
  tf.dispose([ids, mask, labels]);
  return { first: losses[0], last: losses[losses.length - 1] };
}

beforeAll(async () => {
  await useTestBackend();
  tmp = mkdtempSync(join(tmpdir(), 'studio-seq-cls-'));
  model = await loadModel(BASE);
  instance = attachAdapter(
    model,
    'lora',
    { r: 4, loraAlpha: 8, targetModules: ['query', 'value'], modulesToSave: ['classifier'] },
    { seed: 1 },
  );
  const { first, last } = train(8);
  expect(last).toBeLessThan(first);
  out = join(tmp, 'peft');
  const result = await exportAdapter(model, instance, {
    format: 'peft',
    out,
    baseModelNameOrPath: 'adapter-studio/peft-fixture-bert-cls',
  });
  expect(result.verification.ok).toBe(true);
});

afterAll(() => {
  model?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

describe('seq-cls LoRA export with modules_to_save', () => {
  test('tensors: the same keys and shapes as the PEFT-made adapter; the head is the trained copy', async () => {
    const ours = await openSafetensors(join(out, ADAPTER_WEIGHTS));
    const peft = await openSafetensors(join(PEFT_MADE, ADAPTER_WEIGHTS));
    try {
      expect(ours.keys()).toEqual(peft.keys());
      expect(ours.keys()).toContain('base_model.model.classifier.weight');
      for (const key of peft.keys()) expect(ours.info(key).shape, key).toEqual(peft.info(key).shape);
      const head = await ours.readFloat32('base_model.model.classifier.weight');
      const trained = instance.savedModules!.get('classifier')!.weight.dataSync();
      expect(Array.from(head)).toEqual(Array.from(trained));
      const base = model.layers.get('classifier')!.weight.float32();
      expect(relative(head, base).abs).toBeGreaterThan(1e-3);
    } finally {
      await ours.close();
      await peft.close();
    }
  });

  test('adapter_config.json: the fields PEFT writes (task_type SEQ_CLS, modules_to_save classifier and score)', () => {
    const ours = JSON.parse(readFileSync(join(out, ADAPTER_CONFIG), 'utf8'));
    const peft = JSON.parse(readFileSync(join(PEFT_MADE, ADAPTER_CONFIG), 'utf8'));
    expect(ours).toMatchObject({ task_type: 'SEQ_CLS', modules_to_save: ['classifier', 'score'] });
    expectSamePeftConfig(ours, peft);
  });

  test('the LoRA conversion and the merged model carry the trained head too (verified by reloading)', async () => {
    for (const format of ['lora', 'merged'] as const) {
      const result = await exportAdapter(model, instance, { format, out: join(tmp, format) });
      expect(result.verification.ok, format).toBe(true);
      expect(result.verification.adapterEffect).toBeGreaterThan(1e-3);
    }
    const merged = await openSafetensors(join(tmp, 'merged', 'model.safetensors'));
    try {
      const trained = instance.savedModules!.get('classifier')!.weight.dataSync();
      expect(Array.from(await merged.readFloat32('classifier.weight'))).toEqual(Array.from(trained));
    } finally {
      await merged.close();
    }
  });

  test('PeftModel.from_pretrained loads the export and gives our logits', () => {
    const python = pythonOrSkip(['peft', 'transformers', 'torch']);
    if (!python) return;
    const script = `
import json, sys, torch
from peft import PeftModel
from transformers import BertForSequenceClassification
base = BertForSequenceClassification.from_pretrained(sys.argv[1])
model = PeftModel.from_pretrained(base, sys.argv[2]).eval()
ids = torch.tensor(json.loads(sys.argv[3]))
with torch.no_grad():
    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids)).logits
print(json.dumps(logits.reshape(-1).tolist()))
`;
    const run = spawnSync(python, ['-c', script, BASE, out, JSON.stringify(INPUT_IDS)], {
      encoding: 'utf8',
      env: { ...process.env, HF_HUB_OFFLINE: '1' },
      timeout: 300_000,
    });
    expect(run.status, run.stderr).toBe(0);
    const peftLogits = JSON.parse(run.stdout.trim().split('\n').pop()!) as number[];
    const ours = logitsOf(model, INPUT_IDS);
    expect(relative(ours, peftLogits).rel).toBeLessThan(1e-4);
  });
});
