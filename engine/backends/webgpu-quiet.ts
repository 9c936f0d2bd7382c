import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type ProbeOptions, probeWebGpu, type WebGpuProbe } from './webgpu.ts';

export interface QuietProbe extends WebGpuProbe {
  /** What Dawn printed while probing (its own words), for the report; never printed on its own. */
  dawnMessages: string[];
}

const childEntry = fileURLToPath(new URL('./webgpu-probe-child.mjs', import.meta.url));
const probes = new Map<string, Promise<QuietProbe>>();

/** Dawn's stderr as messages: `Warning: …` lines, without the native source locations that follow them. */
export function dawnMessages(stderr: string): string[] {
  return stderr
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('at '))
    .map((line) => line.replace(/^(Warning|Error): /, ''));
}

/** Dawn's messages in our words, once: a missing Vulkan loader is the common case on machines without a GPU. */
export function describeDawnMessages(messages: string[]): string | null {
  if (messages.length === 0) return null;
  const vulkan = messages.find((m) => /Couldn't load Vulkan|libvulkan/i.test(m));
  const others = messages.length - (vulkan ? 1 : 0);
  const parts: string[] = [];
  if (vulkan)
    parts.push('no Vulkan driver on this machine (libvulkan did not load), so Dawn has no GPU route there');
  if (others > 0) parts.push(`Dawn printed ${others} ${vulkan ? 'other ' : ''}note(s) while probing`);
  return `${parts.join('; ')} (STUDIO_DEBUG=1 shows Dawn's own output)`;
}

async function probeInChild(opts: ProbeOptions): Promise<QuietProbe> {
  const child = spawn(process.execPath, [childEntry, JSON.stringify(opts)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk) => {
    out += chunk;
  });
  child.stderr.on('data', (chunk) => {
    err += chunk;
  });
  const code = await new Promise<number | null>((resolve) => {
    child.on('error', () => resolve(null));
    child.on('close', resolve);
  });
  if (code !== 0)
    throw new Error(`the WebGPU probe process failed (${code}): ${err.trim().split('\n').pop()}`);
  return { ...(JSON.parse(out) as WebGpuProbe), dawnMessages: dawnMessages(err) };
}

/**
 * `probeWebGpu` without Dawn's noise: Dawn writes warnings (`Couldn't load Vulkan … BackendVk.cpp`) straight
 * to the native stderr, which Node cannot silence in-process, so the probe runs in a child that only reports.
 * Dawn loads in this process only when WebGPU is then used. In Electron (no plain Node to start) and under
 * STUDIO_DEBUG the probe runs here, as it did.
 */
export function probeWebGpuQuietly(opts: ProbeOptions = {}): Promise<QuietProbe> {
  const key = JSON.stringify(opts);
  let probe = probes.get(key);
  if (!probe) {
    const inProcess = async () => ({ ...(await probeWebGpu(opts)), dawnMessages: [] });
    probe =
      process.versions.electron || process.env.STUDIO_DEBUG
        ? inProcess()
        : probeInChild(opts).catch(inProcess);
    probes.set(key, probe);
  }
  return probe;
}
