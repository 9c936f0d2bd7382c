import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { probeWebGpu } from '../../backends/webgpu.ts';
import { dawnMessages, describeDawnMessages } from '../../backends/webgpu-quiet.ts';
import { runCli as run } from '../testing.ts';

const gpu = await probeWebGpu({ compat: true });

describe('studio backends', () => {
  it('prints the report as JSON with a forced matmul route', async () => {
    const { code, out } = await run(['backends', '--backend', 'wasm:js-relayout', '--json']);
    expect(code).toBe(0);
    const report = JSON.parse(out);
    expect(report).toMatchObject({ chosen: 'wasm', matmul: 'js-relayout', requestedBy: 'argument' });
    expect(report.candidates).toHaveLength(5);
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

describe('studio backends: Dawn stays quiet', () => {
  it('prints none of Dawn’s native warnings, in a process of its own as users run it', async () => {
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const result = spawnSync(process.execPath, [join(root, 'bin/studio.mjs'), 'backends'], {
      encoding: 'utf8',
      env: { ...process.env, STUDIO_DEBUG: '' },
    });
    expect(result.status).toBe(0);
    expect(result.stderr).not.toMatch(/Warning:|BackendVk|Dawn|Vulkan/);
    expect(result.stdout).toMatch(/^chosen: /);
    expect(result.stdout.match(/webgpu notes:/g)?.length ?? 0).toBeLessThanOrEqual(1);
  });

  it('says a missing Vulkan loader once, in our words', () => {
    const stderr = [
      "Warning: Couldn't load Vulkan: libvulkan.so.1: cannot open shared object file: No such file or directory",
      '    at operator() (/home/runner/work/node-webgpu/node-webgpu/third_party/dawn/src/dawn/native/vulkan/BackendVk.cpp:368)',
      '',
    ].join('\n');
    const messages = dawnMessages(stderr);
    expect(messages).toEqual([
      "Couldn't load Vulkan: libvulkan.so.1: cannot open shared object file: No such file or directory",
    ]);
    expect(describeDawnMessages(messages)).toBe(
      "no Vulkan driver on this machine (libvulkan did not load), so Dawn has no GPU route there (STUDIO_DEBUG=1 shows Dawn's own output)",
    );
    expect(describeDawnMessages([])).toBeNull();
  });
});
