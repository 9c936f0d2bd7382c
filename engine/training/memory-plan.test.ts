import { describe, expect, it } from 'vitest';
import { PROJECT_SCHEMA_VERSION, ProjectSettings } from '../common/project-schema.ts';
import { readModelConfig, specFromConfig } from '../models/index.ts';
import { planRunMemory } from './memory-plan.ts';

const GiB = 2 ** 30;

async function qwenShape() {
  return specFromConfig(await readModelConfig('engine/adapters/fixtures/configs/qwen2.5-0.5b/config.json'));
}

function settings(training: Record<string, unknown>) {
  return ProjectSettings.parse({
    schemaVersion: PROJECT_SCHEMA_VERSION,
    name: 'shape',
    model: 'model',
    task: 'causal-lm',
    data: { train: 'train.jsonl' },
    method: { name: 'lora', config: { r: 16, targetModules: 'all-linear' } },
    training: { batchSize: 4, maxSeqLen: 256, ...training },
  });
}

describe('planRunMemory', () => {
  it('auto turns gradient checkpointing on only when the run would not fit without it', async () => {
    const spec = await qwenShape();
    const roomy = planRunMemory(spec, settings({}), 'native:onnxruntime-mlas', 64 * GiB);
    expect(roomy.checkpointing).toBe(false);
    expect(roomy.estimate!.weightsDtype).toBe('bf16');
    const tight = planRunMemory(spec, settings({}), 'native', 3 * GiB);
    expect(tight.checkpointing).toBe(true);
    expect(tight.estimate!.total).toBeLessThan(3 * GiB);
    expect(
      planRunMemory(spec, settings({ gradientCheckpointing: 'on' }), 'native', 64 * GiB).checkpointing,
    ).toBe(true);
  });

  it('refuses a run that cannot fit, naming the estimate, what is available and settings that fit', async () => {
    const spec = await qwenShape();
    const refuse = (training: Record<string, unknown>, available: number, backend = 'native') => {
      try {
        planRunMemory(spec, settings(training), backend, available);
      } catch (error) {
        expect(error).toMatchObject({ code: 'out_of_memory' });
        return (error as Error).message;
      }
      throw new Error('the run was not refused');
    };
    const off = refuse({ gradientCheckpointing: 'off' }, 3 * GiB);
    expect(off).toMatch(
      /needs ~\d+\.\d\d GiB .*weights .* bf16.* batch 4 × 256 tokens.* 3\.00 GiB this machine has available/,
    );
    expect(off).toMatch(/fits with gradientCheckpointing on \(~\d/);
    expect(off).toMatch(/batchSize \d\b/);
    const checkpointed = refuse({}, 1.7 * GiB);
    expect(checkpointed).toMatch(/with gradient checkpointing/);
    expect(checkpointed).toMatch(/maxSeqLen \d+/);
    // weights alone exceed what is there: no setting of the run helps
    expect(refuse({}, 0.5 * GiB)).toMatch(/lower the batch size/);
  });

  it('holds the wasm backend to its 4 GiB tensor heap and leaves GPU backends to their device', async () => {
    const spec = await qwenShape();
    const wasm = () =>
      planRunMemory(spec, settings({ gradientCheckpointing: 'off' }), 'wasm:onnxruntime-mlas', 64 * GiB);
    expect(wasm).toThrow(/wasm backend's 4 GiB tensor heap/);
    const onWasm = planRunMemory(spec, settings({ batchSize: 1, maxSeqLen: 64 }), 'wasm', 64 * GiB);
    expect(onWasm.estimate!.weightsDtype).toBe('f32');
    expect(planRunMemory(spec, settings({}), 'webgpu', 1 * GiB)).toMatchObject({
      estimate: null,
      checkpointing: false,
    });
  });
});
