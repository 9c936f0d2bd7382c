/// <reference types="@webgpu/types" />
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { registerWeightPlacer } from './placement.ts';
import { capabilitiesOf, deviceDescriptor } from './webgpu/device.ts';
import { installFusedKernels } from './webgpu/fused-kernels.ts';
import { installKernels } from './webgpu/kernels.ts';
import { activeRuntime, attachRuntime, GpuRuntime } from './webgpu/runtime.ts';
import type { GpuCapabilities, WebGpuBackendInternals } from './webgpu/types.ts';

const require = createRequire(import.meta.url);

/** How dawn.node reached an adapter. */
export type WebGpuMode = 'native' | 'vulkan' | 'opengles-compat';

export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
}

export interface WebGpuProbe {
  available: boolean;
  /** A CPU rasteriser (llvmpipe, lavapipe, SwiftShader): correct but slow, so never chosen automatically. */
  software: boolean;
  mode?: WebGpuMode;
  adapter?: AdapterInfo;
  reason: string;
  /** Every attempt and its outcome, for the report. */
  attempts: string[];
  /** The device's features, limits and kernel paths, when asked for (`ProbeOptions.capabilities`). */
  capabilities?: GpuCapabilities | null;
}

/** Minimal shape of dawn.node's GPU object and adapter (the `webgpu` package ships no usable types for Node). */
interface GpuAdapterLike {
  info?: Partial<AdapterInfo> & { isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
}

interface GpuLike {
  requestAdapter(options?: Record<string, unknown>): Promise<GpuAdapterLike | null>;
  getPreferredCanvasFormat?(): string;
  wgslLanguageFeatures?: unknown;
}

interface DawnModule {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|softpipe|software|basic render/i;

function describe(adapter: GpuAdapterLike): { info: AdapterInfo; software: boolean } {
  const raw = adapter.info ?? {};
  const info: AdapterInfo = {
    vendor: String(raw.vendor ?? ''),
    architecture: String(raw.architecture ?? ''),
    device: String(raw.device ?? ''),
    description: String(raw.description ?? ''),
  };
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  const software = SOFTWARE.test(text) || Boolean(raw.isFallbackAdapter ?? adapter.isFallbackAdapter);
  return { info, software };
}

/** A GPU object whose adapter requests always ask for compatibility mode (needed by Dawn's OpenGL ES backend). */
function compatGpu(gpu: GpuLike): GpuLike {
  return {
    requestAdapter: (options) => gpu.requestAdapter({ ...options, featureLevel: 'compatibility' }),
    getPreferredCanvasFormat: () => gpu.getPreferredCanvasFormat?.() ?? 'rgba8unorm',
    wgslLanguageFeatures: gpu.wgslLanguageFeatures,
  };
}

export interface ProbeOptions {
  /**
   * Also try Dawn's OpenGL ES compatibility route on Linux (a software rasteriser on machines without a GPU
   * driver). Off by default: it only ever yields an adapter automatic choice skips, and costs start-up time.
   */
  compat?: boolean;
  /** Also make a device and report what it offers and which kernel paths would use it (`studio backends`). */
  capabilities?: boolean;
}

/** One way of asking dawn.node for an adapter: Dawn's flags, and which adapters the route is for. */
export interface AdapterRoute {
  mode: WebGpuMode;
  flags: string[];
  wrap: (g: GpuLike) => GpuLike;
  accept?: (info: AdapterInfo) => boolean;
}

/**
 * The routes to try, in order. allow_unsafe_apis exposes Dawn's experimental features
 * (chromium-experimental-subgroup-matrix). On Windows an NVIDIA GPU goes through Dawn's Vulkan backend first:
 * subgroup matrices come from VK_KHR_cooperative_matrix, and Dawn's default there, D3D12, has no path to them.
 */
export function adapterRoutes(platform: string, compat: boolean): AdapterRoute[] {
  const unsafe = 'enable-dawn-features=allow_unsafe_apis';
  const routes: AdapterRoute[] = [];
  if (platform === 'win32') {
    routes.push({
      mode: 'vulkan',
      flags: [unsafe, 'backend=vulkan'],
      wrap: (g) => g,
      accept: (info) => /nvidia/i.test(`${info.vendor} ${info.description}`),
    });
  }
  routes.push({ mode: 'native', flags: [unsafe], wrap: (g) => g });
  if (platform === 'linux' && compat) {
    routes.push({ mode: 'opengles-compat', flags: ['backend=opengles'], wrap: compatGpu });
  }
  return routes;
}

let found: { gpu: GpuLike; dawn: DawnModule; probe: WebGpuProbe } | null = null;
/** Outcome of each route tried so far in this process, so repeated probes cost nothing. */
const tried = new Map<WebGpuMode, string>();

/**
 * Looks for a WebGPU adapter through dawn.node (`webgpu` package): Dawn's default backend (Vulkan, Metal,
 * D3D12), then, with `compat` on Linux, Dawn's OpenGL ES backend in compatibility mode, which runs on a stock
 * Mesa (llvmpipe) headless with `EGL_PLATFORM=surfaceless`.
 */
export async function probeWebGpu(opts: ProbeOptions = {}): Promise<WebGpuProbe> {
  const probe = await findAdapter(opts);
  return opts.capabilities && probe.available
    ? { ...probe, capabilities: await webGpuCapabilities() }
    : probe;
}

async function findAdapter(opts: ProbeOptions): Promise<WebGpuProbe> {
  if (found) return found.probe;
  let dawn: DawnModule;
  try {
    dawn = require('webgpu') as DawnModule;
  } catch (error) {
    return {
      available: false,
      software: false,
      reason: `the webgpu (dawn.node) package did not load: ${(error as Error).message.split('\n')[0]}`,
      attempts: [],
    };
  }
  const tries = adapterRoutes(process.platform, opts.compat ?? false);
  const compatPossible = process.platform === 'linux';
  for (const t of tries) {
    if (tried.has(t.mode)) continue;
    if (t.mode === 'opengles-compat') process.env.EGL_PLATFORM ??= 'surfaceless';
    try {
      const gpu = t.wrap(dawn.create(t.flags));
      const adapter = await gpu.requestAdapter();
      if (!adapter) {
        tried.set(t.mode, `${t.mode}: no adapter`);
        continue;
      }
      const { info, software } = describe(adapter);
      const name = [info.vendor, info.device || info.description].filter(Boolean).join(' ');
      if (t.accept && !t.accept(info)) {
        tried.set(t.mode, `${t.mode}: ${name}, not NVIDIA: Dawn's default backend serves it`);
        continue;
      }
      tried.set(t.mode, `${t.mode}: ${name}${software ? ' (software)' : ''}`);
      const probe: WebGpuProbe = {
        available: true,
        software,
        mode: t.mode,
        adapter: info,
        reason: software
          ? `only a software adapter (${name}, ${t.mode}): correct but slower than the CPU backend`
          : `hardware adapter ${name} (${t.mode})`,
        attempts: [...tried.values()],
      };
      found = { gpu, dawn, probe };
      return probe;
    } catch (error) {
      tried.set(t.mode, `${t.mode}: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  const attempts = [...tried.values()];
  const skipped =
    compatPossible && !tried.has('opengles-compat')
      ? '; the OpenGL ES compatibility route (software) was not tried: --allow-software-gpu or --backend webgpu tries it'
      : '';
  return {
    available: false,
    software: false,
    reason: `no WebGPU adapter (${attempts.join('; ')})${skipped}`,
    attempts,
  };
}

let registered = false;

/**
 * Makes tfjs-backend-webgpu run on the adapter found by `probeWebGpu`, with our kernels, and selects it. The
 * backend registers itself only when `navigator.gpu` exists at import time, so the globals are installed first;
 * its factory is then replaced by ours, which asks the device for shader-f16, subgroups, subgroup matrices and
 * the adapter's own limits (stock tfjs asks for none of the features). Returns what the device offers.
 */
export async function initWebGpuBackend(): Promise<GpuCapabilities> {
  const probe = await probeWebGpu({ compat: true });
  if (!found || !probe.available) throw new Error(`WebGPU is unavailable: ${probe.reason}`);
  const { gpu, dawn } = found;
  for (const [key, value] of Object.entries(dawn.globals)) {
    if (!(key in globalThis))
      Object.defineProperty(globalThis, key, { value, configurable: true, writable: true });
  }
  // Node 21+ defines a navigator getter: redefine rather than assign
  const nav = (globalThis as { navigator?: object }).navigator ?? {};
  Object.defineProperty(globalThis, 'navigator', {
    value: Object.assign(Object.create(nav), { gpu, userAgent: 'Node.js' }),
    configurable: true,
    writable: true,
  });
  const webgpu = await import('@tensorflow/tfjs-backend-webgpu');
  if (!registered) {
    registered = true;
    tf.removeBackend('webgpu');
    tf.registerBackend(
      'webgpu',
      async () => {
        const adapter = (await gpu.requestAdapter({
          powerPreference: 'high-performance',
        })) as GPUAdapter | null;
        if (!adapter) throw new Error('WebGPU: the adapter went away between probe and initialisation');
        const info = (adapter as unknown as { info?: GPUAdapterInfo }).info;
        const device = await adapter.requestDevice(deviceDescriptor(adapter));
        const backend = new webgpu.WebGPUBackend(device, info as never);
        // stock readSync goes through OffscreenCanvas, which Node lacks: say what to do instead
        const readSync = backend.readSync.bind(backend);
        backend.readSync = (dataId: object) => {
          const cached = (backend as unknown as WebGpuBackendInternals).tensorMap.get(dataId).values;
          if (
            cached != null ||
            typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas !== 'undefined'
          ) {
            return readSync(dataId);
          }
          throw new Error(
            'WebGPU cannot read tensors synchronously in Node (dataSync, arraySync, bufferSync): read them with await data() or array()',
          );
        };
        const runtime = new GpuRuntime(
          backend as unknown as WebGpuBackendInternals,
          capabilitiesOf(device, info),
        );
        attachRuntime(backend, runtime);
        return backend;
      },
      3,
    );
    installKernels([installFusedKernels]);
    registerWeightPlacer('webgpu', placeOnGpu);
    // tensors stay on the GPU (stock tfjs runs small ops on the CPU, which costs a readback each); more
    // dispatches per submit, since each submit costs a round trip through Dawn
    tf.env().set('WEBGPU_CPU_FORWARD', false);
    tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', 64);
  }
  if (!(await tf.setBackend('webgpu')))
    throw new Error('tfjs-backend-webgpu failed to initialise on the adapter');
  return activeRuntime()!.caps;
}

/**
 * What the probed adapter's device offers and which kernel paths would use it: the active backend's when webgpu
 * runs, else from a device made for the question and destroyed. Null without an adapter.
 */
export async function webGpuCapabilities(): Promise<GpuCapabilities | null> {
  const active = activeRuntime();
  if (active) return active.caps;
  const probe = await probeWebGpu({ compat: true });
  if (!found || !probe.available) return null;
  const adapter = (await found.gpu.requestAdapter({
    powerPreference: 'high-performance',
  })) as GPUAdapter | null;
  if (!adapter) return null;
  const info = (adapter as unknown as { info?: GPUAdapterInfo }).info;
  const device = await adapter.requestDevice(deviceDescriptor(adapter));
  try {
    return capabilitiesOf(device, info);
  } finally {
    device.destroy();
  }
}

/** Largest finite half-precision value: weights beyond it stay f32. */
const HALF_MAX = 65504;

/**
 * A freshly loaded frozen matrix's GPU copy (the placer of placement.ts): f16 when the checkpoint stores it in
 * half precision (F16, BF16) and the device has shader-f16, else f32; split by rows to fit a binding. GEMMs and
 * embedding lookups then read the copy; tfjs's f32 copy stays on the host.
 */
function placeOnGpu(t: tf.Tensor, storedDtype: string): void {
  const rt = activeRuntime();
  if (!rt || t.rank !== 2) return;
  let half = rt.caps.f16.used && (storedDtype === 'F16' || storedDtype === 'BF16');
  const values = rt.backend.tensorMap.get(t.dataId).values as Float32Array | null;
  if (half && values) {
    for (let i = 0; i < values.length; i++) {
      if (Math.abs(values[i]) > HALF_MAX) {
        half = false;
        break;
      }
    }
  }
  rt.freeze(t as tf.Tensor2D, half ? 'f16' : 'f32');
}
