import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { useTestBackend } from '../backends/testing.ts';
import { importPeftAdapter } from '../export/import.ts';
import { loadRunAdapter } from '../runs/index.ts';
import { openSafetensors } from '../safetensors/index.ts';
import { pythonOrSkip } from '../testing/python.ts';
import { STUDIO_METHODS_PY } from './studio-methods-py.ts';
import { demoProject, studioLogits } from './testing.ts';

/**
 * studio_methods.py with PEFT itself: TLoRA and LoRA-XS adapters built by get_peft_model, their trainable
 * tensors perturbed, saved by save_pretrained, are imported by the studio with the same logits and the frozen
 * matrices read from the file (LoRA-XS's are the SVD of the weights in PyTorch, not recomputed here).
 */
const DEMO_MODEL = resolve(import.meta.dirname, '..', '..', 'assets', 'demo', 'model');
const IDS = [[5, 17, 301, 42, 999, 7, 1500, 88]];
const root = mkdtempSync(join(tmpdir(), 'studio-methods-'));
beforeAll(async () => {
  await useTestBackend();
  writeFileSync(join(root, 'studio_methods.py'), STUDIO_METHODS_PY);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const SAVE = `import json, sys
sys.path.insert(0, sys.argv[1])
import studio_methods, torch
from peft import get_peft_model
from transformers import AutoModelForCausalLM
torch.manual_seed(0)
spec = json.loads(sys.argv[4])
model = get_peft_model(AutoModelForCausalLM.from_pretrained(sys.argv[2]),
                       getattr(studio_methods, spec["className"])(**spec["kwargs"]))
with torch.no_grad():
    for p in model.parameters():
        if p.requires_grad:
            p.add_(torch.randn_like(p) * 0.05)
model.eval().save_pretrained(sys.argv[3])
with torch.no_grad():
    print(json.dumps(model(torch.tensor(json.loads(sys.argv[5]))).logits.flatten().tolist()))`;

test.each([
  {
    name: 'tlora' as const,
    spec: {
      className: 'TloraConfig',
      kwargs: {
        task_type: 'CAUSAL_LM',
        r: 4,
        tlora_dropout: 0.5,
        projection_seed: 9,
        target_modules: ['q_proj', 'v_proj'],
      },
    },
    frozen: ['tlora_A', 'tlora_C'],
  },
  {
    name: 'loraxs' as const,
    spec: {
      className: 'LoraxsConfig',
      kwargs: {
        task_type: 'CAUSAL_LM',
        r: 8,
        alpha: 16,
        loraxs_dropout: 0.0,
        target_modules: ['q_proj', 'v_proj', 'down_proj'],
      },
    },
    frozen: ['loraxs_A', 'loraxs_B'],
  },
])('a PEFT-saved $name adapter imports with the same logits', async ({ name, spec, frozen }) => {
  const python = pythonOrSkip(['torch', 'transformers', 'peft']);
  if (!python) return;
  const adapterDir = join(root, name);
  const saved = spawnSync(
    python,
    ['-c', SAVE, root, DEMO_MODEL, adapterDir, JSON.stringify(spec), JSON.stringify(IDS)],
    { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1' }, timeout: 120_000 },
  );
  expect(saved.status, saved.stderr.slice(-3000)).toBe(0);
  const reference = Float32Array.from(JSON.parse(saved.stdout) as number[]);
  const file = await openSafetensors(join(adapterDir, 'adapter_model.safetensors'));
  const keys = file.keys();
  await file.close();
  for (const suffix of frozen)
    expect(
      keys.some((k) => k.endsWith(`.${suffix}`)),
      suffix,
    ).toBe(true);

  const { root: projectRoot, project } = await demoProject({ name });
  try {
    const imported = await importPeftAdapter(adapterDir, project);
    expect(imported.method).toBe(name);
    const adapter = await loadRunAdapter(imported.runDir);
    let ours: Float32Array;
    try {
      ours = studioLogits(adapter.model, IDS);
    } finally {
      adapter.model.dispose();
    }
    let maxDiff = 0;
    let maxRef = 0;
    for (let i = 0; i < ours.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(ours[i] - reference[i]));
      maxRef = Math.max(maxRef, Math.abs(reference[i]));
    }
    expect(maxDiff / maxRef).toBeLessThanOrEqual(1e-4);
    expect(imported.adapterEffect).toBeGreaterThan(100 * maxDiff);
  } finally {
    rmSync(projectRoot, { recursive: true, force: true });
  }
}, 180_000);
