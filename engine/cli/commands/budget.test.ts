import { describe, expect, test } from 'vitest';
import { runCli as run } from '../testing.ts';

const llama = 'engine/adapters/fixtures/configs/llama-3.2-3b/config.json';

describe('studio budget', () => {
  test('LoRA r=32 on Llama-3.2-3B from config.json, as text and JSON', async () => {
    const text = await run([
      'budget',
      llama,
      '--r',
      '32',
      '--lora-alpha',
      '64',
      '--target-modules',
      'q_proj,v_proj',
    ]);
    expect(text.code).toBe(0);
    expect(text.out).toContain(
      'trainable params: 9,175,040 || all params: 3,221,924,864 || trainable%: 0.2848',
    );
    expect(text.out).toMatch(/self_attn\.q_proj\s+×28\s+Linear 3072→3072\s+196,608 each/);
    const json = await run([
      'budget',
      'engine/adapters/fixtures/configs/llama-3.2-3b',
      '--r',
      '32',
      '--use-dora',
      '--json',
    ]);
    const budget = JSON.parse(json.out);
    expect(budget.trainable).toBe(9_289_728);
    expect(budget.files.peft).toBe(37_181_760);
  });

  test('usage and config errors are one clear line', async () => {
    const wrongMethod = await run(['budget', llama, '--u', '4']);
    expect(wrongMethod.code).toBe(2);
    expect(wrongMethod.err).toMatch(/--u is not an option of lora \(it belongs to tinylora\)/);
    const bad = await run(['budget', llama, '--r', '0']);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('invalid lora config: r: r must be at least 1');
    const typo = await run(['budget', llama, '--target-modules', 'q_prj']);
    expect(typo.err).toMatch(/nearest names: q_proj/);
  });

  test('--compare puts methods side by side with the options each has, as the app compares them', async () => {
    const compare = ['budget', llama, '--compare', 'lora,vera', '--r', '8', '--target-modules'];
    const text = await run([...compare, 'q_proj,v_proj']);
    expect(text.code).toBe(0);
    const [header, lora, vera] = text.out.split('\n');
    expect(header).toMatch(/^method\s+trainable\s+of model\s+PEFT file\s+memory$/);
    // LoRA: r·(in + out) per module, 28 layers of q_proj (3072→3072) and v_proj (3072→1024)
    expect(lora).toMatch(
      new RegExp(`^lora\\s+${(28 * 8 * (3072 + 3072 + 3072 + 1024)).toLocaleString('en-US')}\\s`),
    );
    expect(vera).toMatch(/^vera\s+\d/);
    const json = JSON.parse((await run([...compare, 'q_proj', '--json'])).out);
    expect(json.map((b: { method: string }) => b.method)).toEqual(['lora', 'vera']);
    const foreign = await run(['budget', llama, '--compare', 'lora,vera', '--u', '4']);
    expect(foreign.code).toBe(2);
    expect(foreign.err).toMatch(/--u is not an option of lora, vera \(it belongs to tinylora\)/);
  });
});
