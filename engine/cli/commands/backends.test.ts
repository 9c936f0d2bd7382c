import { describe, expect, it } from 'vitest';
import { probeWebGpu } from '../../backends/webgpu.ts';
import { runCli as run } from '../testing.ts';

const gpu = await probeWebGpu({ compat: true });

describe('studio backends', () => {
  it('prints the report as JSON with a forced matmul route', async () => {
    const { code, out } = await run(['backends', '--backend', 'wasm:js-relayout', '--json']);
    expect(code).toBe(0);
    const report = JSON.parse(out);
    expect(report).toMatchObject({ chosen: 'wasm', matmul: 'js-relayout', requestedBy: 'argument' });
    expect(report.candidates).toHaveLength(4);
  });

  it('prints a table naming the chosen backend', async () => {
    const { code, out } = await run(['backends', '--backend', 'cpu']);
    expect(code).toBe(0);
    expect(out).toMatch(/^chosen: cpu/);
    expect(out).toMatch(/\*\s+cpu\s+yes/);
  });

  it('rejects an unknown backend with the accepted names', async () => {
    const { code, err } = await run(['backends', '--backend', 'tpu']);
    expect(code).toBe(1);
    expect(err).toMatch(/unknown backend "tpu"/);
  });

  it.skipIf(!gpu.available)(
    'describes the WebGPU device: features, limits and why each kernel path runs or not',
    async () => {
      const { code, out } = await run(['backends', '--backend', 'cpu']);
      expect(code).toBe(0);
      expect(out).toMatch(/webgpu device: /);
      expect(out).toMatch(/limits +maxBufferSize \d+ MiB, maxStorageBufferBindingSize \d+ MiB/);
      for (const path of ['f16 weights', 'subgroups', 'subgroup matrix']) {
        expect(out).toMatch(new RegExp(`${path} +(used|not used): \\S`));
      }
      const json = JSON.parse((await run(['backends', '--backend', 'cpu', '--json'])).out);
      const caps = json.candidates.find((c: { name: string }) => c.name === 'webgpu').details.capabilities;
      expect(caps.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
      if (caps.f16.used) expect(caps.features).toContain('shader-f16');
      if (caps.subgroupMatrix.used) expect(caps.features).toContain('chromium-experimental-subgroup-matrix');
    },
  );
});
