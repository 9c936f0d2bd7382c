import { ensureGradients } from '../gradients.ts';
import { initWebGpuBackend, probeWebGpu } from '../webgpu.ts';
import { activeRuntime, type GpuRuntime } from './runtime.ts';

/**
 * Kernel-parity helpers: the adapter dawn.node finds (in CI a software one: Mesa lavapipe over Vulkan, or llvmpipe
 * through Dawn's OpenGL ES compatibility mode), and the tolerances f32 and f16 kernels meet.
 */
export const gpuProbe = await probeWebGpu({ compat: true });
// CI installs a software adapter (.ci/run): there a missing one is a failure, not a skip
if (!gpuProbe.available && process.env.CI === 'true')
  throw new Error(`CI has no WebGPU adapter: ${gpuProbe.reason}`);
if (!gpuProbe.available) console.log(`webgpu kernel tests skipped: ${gpuProbe.reason}`);

/**
 * Whether the f16 kernels can be tested: the device has shader-f16. Under CI=true its absence fails (CI
 * installs Mesa 25's lavapipe, which has it); locally the test says what it skipped.
 */
export function f16Testable(rt: GpuRuntime, what: string): boolean {
  if (rt.caps.f16.used) return true;
  if (process.env.CI === 'true') throw new Error(`CI must test ${what}: ${rt.caps.f16.reason}`);
  console.log(`${what} not tested: ${rt.caps.f16.reason}`);
  return false;
}

/** f32 kernels must match the cpu backend to 1e-4, f16 ones to 2e-3 (relative, see `maxRelativeDiff`). */
export const F32_TOLERANCE = 1e-4;
export const F16_TOLERANCE = 2e-3;

/** Activates webgpu (with our kernels) and returns its runtime. */
export async function useGpu(): Promise<GpuRuntime> {
  await ensureGradients();
  await initWebGpuBackend();
  return activeRuntime()!;
}
