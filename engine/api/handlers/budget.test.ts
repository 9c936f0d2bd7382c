import { describe, expect, test } from 'vitest';
import { computeBudget } from '../../adapters/budget.ts';
import { readModelConfig, specFromConfig } from '../../models/index.ts';
import { tyingGroups } from './budget.ts';

const spec = async () => specFromConfig(await readModelConfig('engine/models/fixtures/llama/config.json'));
const qv = ['q_proj', 'v_proj'];
const names = [0, 1].flatMap((i) => qv.map((m) => `model.layers.${i}.self_attn.${m}`));

describe('budget tying groups', () => {
  test('TinyLoRA: each tied v lists the consecutive modules of its group', async () => {
    const groups = tyingGroups(
      computeBudget(await spec(), 'tinylora', { u: 4, weightTying: 0.5, targetModules: qv }),
    );
    expect(groups).toEqual([
      { name: 'tinylora_v.0', size: 4, modules: names.slice(0, 2) },
      { name: 'tinylora_v.1', size: 4, modules: names.slice(2) },
    ]);
  });

  test('VeRA: the frozen projections are shared by every target; LoRA shares nothing', async () => {
    const s = await spec();
    const vera = tyingGroups(computeBudget(s, 'vera', { r: 4, targetModules: qv }));
    expect(vera.map((g) => [g.name, g.modules])).toEqual([
      ['vera_A', names],
      ['vera_B', names],
    ]);
    expect(tyingGroups(computeBudget(s, 'lora', { targetModules: qv }))).toEqual([]);
  });
});
