import { afterEach, describe, expect, it } from 'vitest';
import { parsePreference, selectBackend } from './index.ts';

describe('parsePreference', () => {
  it('accepts backend names, auto and forced wasm matmul routes', () => {
    expect(parsePreference('auto')).toEqual({ backend: 'auto' });
    expect(parsePreference(' WebGPU ')).toEqual({ backend: 'webgpu' });
    expect(parsePreference('wasm:koffi-blas')).toEqual({ backend: 'wasm', matmul: 'koffi-blas' });
    expect(parsePreference('native:onnxruntime-mlas')).toEqual({
      backend: 'native',
      matmul: 'onnxruntime-mlas',
    });
  });

  it('names the accepted values when the input is wrong', () => {
    expect(() => parsePreference('tpu')).toThrow(/unknown backend "tpu": expected one of auto, cuda, webgpu/);
    expect(() => parsePreference('cpu:js-relayout')).toThrow(/expected native:<.*> or wasm:</);
    // the native backend has no JS route: it exists for the native GEMM
    expect(() => parsePreference('native:js-relayout')).toThrow(/unknown matmul route/);
    expect(() => parsePreference('wasm:fast')).toThrow(/unknown matmul route/);
  });
});

describe('selectBackend', () => {
  const saved = process.env.STUDIO_BACKEND;
  afterEach(() => {
    if (saved === undefined) delete process.env.STUDIO_BACKEND;
    else process.env.STUDIO_BACKEND = saved;
  });

  it('reports every candidate, in order, with exactly one used and a reason for each', async () => {
    delete process.env.STUDIO_BACKEND;
    const report = await selectBackend();
    expect(report.requestedBy).toBe('auto');
    expect(report.candidates.map((c) => c.name)).toEqual(['cuda', 'webgpu', 'native', 'wasm', 'cpu']);
    expect(report.candidates.filter((c) => c.used).map((c) => c.name)).toEqual([report.chosen]);
    for (const c of report.candidates) expect(c.reason.length).toBeGreaterThan(0);
    const gpu = report.candidates[1];
    // a software adapter is never picked automatically
    if (gpu.details.software) expect(report.chosen).not.toBe('webgpu');
    if (report.chosen === 'wasm' || report.chosen === 'native') expect(report.matmul).toBeDefined();
    // automatic choice probes hardware adapters only: the software OpenGL ES route is left untried
    const attempts = gpu.details.attempts as string[];
    expect(attempts.filter((a) => a.startsWith('opengles-compat'))).toEqual([]);
  });

  it('honours an explicit argument, including a forced matmul route', async () => {
    const report = await selectBackend({ prefer: 'wasm:js-relayout' });
    expect(report).toMatchObject({ chosen: 'wasm', matmul: 'js-relayout', requestedBy: 'argument' });
    // nothing else is probed for an explicit request
    for (const name of ['cuda', 'webgpu', 'native', 'cpu']) {
      expect(report.candidates.find((c) => c.name === name)?.reason).toBe('not probed: wasm was requested');
    }
  });

  it('probes every candidate, the software WebGPU route included, when surveying', async () => {
    const report = await selectBackend({ prefer: 'cpu', survey: true });
    expect(report.chosen).toBe('cpu');
    for (const c of report.candidates) expect(c.reason).not.toMatch(/not probed/);
    const gpu = report.candidates.find((c) => c.name === 'webgpu')!;
    const attempts = gpu.details.attempts as string[];
    const nativeAdapter = attempts.some((a) => a.startsWith('native:') && !a.endsWith('no adapter'));
    if (process.platform === 'linux' && !nativeAdapter && !gpu.reason.includes('did not load')) {
      expect(attempts.some((a) => a.startsWith('opengles-compat'))).toBe(true);
    }
  });

  it('honours STUDIO_BACKEND when no argument is given', async () => {
    process.env.STUDIO_BACKEND = 'cpu';
    const report = await selectBackend();
    expect(report).toMatchObject({ chosen: 'cpu', requestedBy: 'env' });
    expect(report.reason).toMatch(/STUDIO_BACKEND/);
  });

  it('fails with the reason when the requested backend is unavailable', async () => {
    await expect(selectBackend({ prefer: 'cuda' })).rejects.toThrow(/cuda was requested but is unavailable/);
  });
});
