import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fusedOpsParity } from '../../testing/fused-ops.ts';
import { fusedOps } from '../fused.ts';
import { ensureGradients } from '../gradients.ts';
import { cxxAvailable } from './compile.ts';
import { cpuOps, setCpuOps } from './cpu-ops.ts';
import { activateNative } from './index.ts';
import { fusedLimits } from './library.ts';

/** Every fused op on the native backend against the composed ops on cpu, down each route its kernels take. */

beforeAll(async () => {
  await ensureGradients();
  await activateNative();
});

const defaults = { ...fusedLimits };
const routes: [string, Partial<typeof fusedLimits>, boolean][] = [
  ['on the compiled CPU kernels', {}, true],
  ['softmax and transcendentals on the GEMM library', { nativeMinElements: 0 }, false],
  // tiny scratch: one softmax row per NLL pass, one (batch, kv head) group per attention pass
  [
    'softmax and transcendentals in JS, scratch split into the smallest chunks',
    { nativeMinElements: Infinity, nllScratch: 1, attentionScratch: 1 },
    false,
  ],
];

describe.each(routes)('native fused kernels: %s', (_route, limits, compiled) => {
  beforeAll(() => {
    Object.assign(fusedLimits, limits);
    if (!compiled) setCpuOps(false);
  });
  afterAll(() => {
    Object.assign(fusedLimits, defaults);
    setCpuOps(null);
  });

  it.runIf(compiled)('uses the compiled kernels exactly where a C++ compiler is present', () => {
    expect(cpuOps() !== null).toBe(cxxAvailable());
  });

  it('STUDIO_FUSED=off turns them off', () => {
    process.env.STUDIO_FUSED = 'off';
    try {
      expect(fusedOps()).toBeNull();
    } finally {
      delete process.env.STUDIO_FUSED;
    }
  });

  fusedOpsParity(1e-4);
});
