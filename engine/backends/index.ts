import * as tf from '@tensorflow/tfjs-core';
import { isMatMulPath, matMulPaths, type NativeGemmPath, nativeGemmOrder } from './gemm.ts';
import { ensureGradients } from './gradients.ts';
import { bf16Status } from './native/bf16.ts';
import { cpuOpsStatus } from './native/cpu-ops.ts';
import { activateNative } from './native/index.ts';
import type { BackendName, BackendReport, CandidateReport, MatMulPath } from './types.ts';
import { activateWasm } from './wasm.ts';
import { initWebGpuBackend } from './webgpu.ts';
import { probeWebGpuQuietly, type QuietProbe } from './webgpu-quiet.ts';

export { ensureGradients } from './gradients.ts';
export { getMatMulRoute, setMatMulRoute } from './matmul.ts';
export type { BackendName, BackendReport, CandidateReport, MatMulPath, NativeGemm } from './types.ts';

export const backendNames: BackendName[] = ['cuda', 'webgpu', 'native', 'wasm', 'cpu'];

export interface SelectOptions {
  /**
   * A backend name (`cuda`, `webgpu`, `native`, `wasm`, `cpu`, `auto`), `native:<gemm>` to force its native GEMM
   * (`native:onnxruntime-mlas`, `native:koffi-blas`), or `wasm:<matmul path>` to force the wasm matmul route
   * (`wasm:onnxruntime-mlas`, `wasm:koffi-blas`, `wasm:js-relayout`, `wasm:wasm-stock`). Defaults to
   * `STUDIO_BACKEND`, then automatic choice.
   */
  prefer?: string;
  /**
   * Let automatic choice take a software WebGPU adapter (llvmpipe, lavapipe, SwiftShader); this also tries
   * Dawn's OpenGL ES compatibility route, which automatic choice otherwise skips.
   */
  allowSoftwareGpu?: boolean;
  /**
   * Probe every candidate, the software WebGPU route included, even when one backend is requested: for a full
   * report (`studio backends`). Otherwise only the requested backend, or the automatic order, is probed.
   */
  survey?: boolean;
}

interface Preference {
  backend: BackendName | 'auto';
  matmul?: MatMulPath;
}

/** Parses a preference string; throws naming the accepted values. */
export function parsePreference(raw: string): Preference {
  const value = raw.trim().toLowerCase();
  if (value === '' || value === 'auto') return { backend: 'auto' };
  const [name, route] = value.split(':');
  if (!(backendNames as string[]).includes(name)) {
    throw new Error(
      `unknown backend "${raw}": expected one of auto, ${backendNames.join(', ')}, native:<${nativeGemmOrder.join('|')}> or wasm:<${matMulPaths.join('|')}>`,
    );
  }
  if (route !== undefined) {
    if (name === 'native' && (nativeGemmOrder as string[]).includes(route)) {
      return { backend: 'native', matmul: route as MatMulPath };
    }
    if (name !== 'wasm' || !isMatMulPath(route)) {
      throw new Error(
        `unknown matmul route "${raw}": expected native:<${nativeGemmOrder.join('|')}> or wasm:<${matMulPaths.join('|')}>`,
      );
    }
    return { backend: 'wasm', matmul: route };
  }
  return { backend: name as BackendName };
}

const CUDA_PACKAGE = '@tensorflow/tfjs-node-gpu';

/** Loads the optional CUDA plugin if the user installed it; it is never a dependency of the studio. */
async function probeCuda(): Promise<CandidateReport> {
  const base = { name: 'cuda' as const, used: false };
  try {
    // a variable specifier keeps bundlers and type-checking from resolving the optional package
    const specifier = CUDA_PACKAGE;
    await import(/* @vite-ignore */ specifier);
  } catch (error) {
    const code = (error as { code?: string }).code;
    const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
    return {
      ...base,
      available: false,
      reason: missing
        ? `${CUDA_PACKAGE} is not installed (optional plugin; needs an NVIDIA GPU with CUDA 11.2 and cuDNN 8.1)`
        : `${CUDA_PACKAGE} failed to load: ${(error as Error).message.split('\n')[0]}`,
      details: { package: CUDA_PACKAGE },
    };
  }
  if (!tf.findBackendFactory('tensorflow')) {
    return {
      ...base,
      available: false,
      reason: `${CUDA_PACKAGE} loaded but registered its backend with another copy of @tensorflow/tfjs-core`,
      details: { package: CUDA_PACKAGE },
    };
  }
  return { ...base, available: true, reason: `${CUDA_PACKAGE} loaded`, details: { package: CUDA_PACKAGE } };
}

async function activateCuda(): Promise<Record<string, unknown>> {
  if (!(await tf.setBackend('tensorflow'))) throw new Error(`${CUDA_PACKAGE} failed to initialise`);
  const backend = tf.backend() as unknown as { isUsingGpuDevice?: boolean };
  if (backend.isUsingGpuDevice === false) {
    throw new Error(`${CUDA_PACKAGE} loaded but found no usable CUDA device (libtensorflow runs on the CPU)`);
  }
  return { gpuDevice: backend.isUsingGpuDevice ?? 'unknown' };
}

/**
 * Chooses and activates the compute backend, and reports why every other candidate was skipped.
 * Order: CUDA (optional plugin), hardware WebGPU, the native CPU backend (typed arrays outside any wasm heap, a
 * native GEMM), wasm with the fastest matmul route, plain `cpu`.
 * An explicit preference (argument, then `STUDIO_BACKEND`) is honoured or fails with the reason.
 * Synchronous native GEMMs block the calling thread: run the engine in a worker or utility process.
 */
export async function selectBackend(opts: SelectOptions = {}): Promise<BackendReport> {
  const requestedBy: BackendReport['requestedBy'] =
    opts.prefer !== undefined ? 'argument' : process.env.STUDIO_BACKEND ? 'env' : 'auto';
  const preference = parsePreference(opts.prefer ?? process.env.STUDIO_BACKEND ?? 'auto');
  const wanted = preference.backend;
  const allowSoftwareGpu = opts.allowSoftwareGpu ?? false;

  await ensureGradients();
  const survey = opts.survey ?? false;
  // an explicit request probes nothing else: each probe loads native libraries and costs start-up time
  const probes = (name: BackendName) => survey || wanted === 'auto' || wanted === name;
  const notProbed = (name: BackendName): CandidateReport => ({
    name,
    available: false,
    used: false,
    reason: `not probed: ${wanted} was requested`,
    details: { probed: false },
  });
  const cuda = probes('cuda') ? await probeCuda() : notProbed('cuda');
  const gpu: QuietProbe = probes('webgpu')
    ? await probeWebGpuQuietly({
        compat: survey || allowSoftwareGpu || wanted === 'webgpu',
        capabilities: survey,
      })
    : { available: false, software: false, reason: '', attempts: [], dawnMessages: [] };
  const webgpu: CandidateReport = probes('webgpu')
    ? {
        name: 'webgpu',
        available: gpu.available,
        used: false,
        reason: gpu.reason,
        details: {
          mode: gpu.mode,
          software: gpu.software,
          adapter: gpu.adapter,
          attempts: gpu.attempts,
          dawnMessages: gpu.dawnMessages,
        },
      }
    : notProbed('webgpu');
  const native: CandidateReport = probes('native')
    ? { name: 'native', available: true, used: false, reason: '', details: {} }
    : notProbed('native');
  const wasm: CandidateReport = probes('wasm')
    ? { name: 'wasm', available: true, used: false, reason: '', details: {} }
    : notProbed('wasm');
  const cpu: CandidateReport = {
    name: 'cpu',
    available: true,
    used: false,
    reason: 'plain JS kernels, about 0.7 GFLOP/s: last resort',
    details: {},
  };
  const candidates = [cuda, webgpu, native, wasm, cpu];

  let chosen: CandidateReport | null = null;
  let matmul: MatMulPath | undefined;

  if (wanted === 'cuda' || (wanted === 'auto' && cuda.available)) {
    if (!cuda.available) throw new Error(`backend cuda was requested but is unavailable: ${cuda.reason}`);
    try {
      cuda.details = { ...cuda.details, ...(await activateCuda()) };
      chosen = cuda;
    } catch (error) {
      if (wanted === 'cuda') throw error;
      cuda.available = false;
      cuda.reason = (error as Error).message.split('\n')[0];
    }
  }
  const gpuWanted =
    wanted === 'webgpu' || (wanted === 'auto' && gpu.available && (!gpu.software || allowSoftwareGpu));
  if (!chosen && gpuWanted) {
    if (!gpu.available) throw new Error(`backend webgpu was requested but is unavailable: ${gpu.reason}`);
    webgpu.details.capabilities = await initWebGpuBackend();
    chosen = webgpu;
  }
  if (!chosen && native.available && (wanted === 'auto' || wanted === 'native')) {
    try {
      const setup = await activateNative(preference.matmul as NativeGemmPath | undefined);
      matmul = setup.gemm.path;
      const bf16 = bf16Status();
      const ops = cpuOpsStatus();
      native.details = {
        matmul,
        gemm: setup.gemm.details,
        matmulCandidates: setup.gemmProbes,
        bf16: { kernel: bf16.kernel !== null, reason: bf16.reason },
        cpuOps: { compiled: ops.ops !== null, reason: ops.reason },
        allocator: setup.allocator,
      };
      native.reason =
        `typed-array tensors (no wasm heap limit) with matmul on ${matmul}` +
        (preference.matmul ? ' (forced)' : '') +
        (ops.ops ? '; elementwise and row kernels compiled for this CPU' : '') +
        (bf16.kernel ? '; bf16 weights on AVX512-BF16' : '');
      chosen = native;
    } catch (error) {
      if (wanted === 'native') throw error;
      native.available = false;
      native.reason = (error as Error).message.split('\n')[0];
    }
  }
  if (!chosen && wasm.available && (wanted === 'auto' || wanted === 'wasm')) {
    try {
      const setup = await activateWasm(preference.matmul);
      matmul = setup.matmul;
      wasm.details = {
        simd: setup.simd,
        threads: 1,
        matmul: setup.matmul,
        gemm: setup.gemm?.details,
        matmulCandidates: setup.gemmProbes,
      };
      const skipped = setup.gemmProbes
        .filter((p) => !p.available && !p.reason.startsWith('not tried'))
        .map((p) => `${p.path}: ${p.reason}`);
      wasm.reason =
        `SIMD wasm with matmul on ${setup.matmul}` +
        (preference.matmul ? ' (forced)' : skipped.length ? ` (skipped ${skipped.join('; ')})` : '');
      chosen = wasm;
    } catch (error) {
      if (wanted === 'wasm') throw error;
      wasm.available = false;
      wasm.reason = `tfjs-backend-wasm failed: ${(error as Error).message.split('\n')[0]}`;
    }
  }
  // the device's features, limits and kernel paths, for the report
  if (survey && gpu.available && !webgpu.details.capabilities) webgpu.details.capabilities = gpu.capabilities;
  if (!chosen) {
    await import('@tensorflow/tfjs-backend-cpu');
    if (!(await tf.setBackend('cpu'))) throw new Error('even the cpu backend failed to initialise');
    chosen = cpu;
  }
  chosen.used = true;
  const picked = chosen.name;
  for (const c of candidates) {
    if (c.used || !c.available) continue;
    if (wanted !== 'auto' && !probes(c.name)) c.reason = `not probed: ${wanted} was requested`;
    else if (wanted !== 'auto')
      c.reason = `not requested (${wanted} was requested)${c.reason ? `; ${c.reason}` : ''}`;
    else if (c === webgpu && gpu.software)
      c.reason = `${gpu.reason}; allowSoftwareGpu (--allow-software-gpu) or preferring webgpu uses it`;
    else if (c === cpu) c.reason = `${picked} was available: ${cpu.reason}`;
    else c.reason = `${picked} comes first in the order${c.reason ? `; ${c.reason}` : ''}`;
  }
  const reason =
    requestedBy === 'auto' && wanted === 'auto'
      ? `automatic: ${chosen.name} is the first available backend in the order cuda, webgpu (hardware), native, wasm, cpu`
      : `${wanted}${preference.matmul ? `:${preference.matmul}` : ''} requested by ${requestedBy === 'env' ? 'STUDIO_BACKEND' : 'argument'}`;
  return { chosen: chosen.name, matmul, reason, requestedBy, candidates };
}
