import { readFileSync } from 'node:fs';
import { resourceUsage } from 'node:process';
import type { LoadedModel } from '../engine/models/types.ts';

/** A `/proc/self/status` field in bytes (`VmHWM`, `VmRSS`), or null off Linux. */
function procStatusBytes(field: string): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** The whole process's peak resident set: VmHWM where /proc has it, else getrusage's maxRSS. */
export function peakRssBytes(): number {
  return procStatusBytes('VmHWM') ?? resourceUsage().maxRSS * 1024;
}

/** Bytes the model's frozen matrices are held in, per dtype (`{ BF16: 988e6 }`; a tied head counted once). */
export function frozenDtypes(model: LoadedModel): Record<string, number> {
  const out: Record<string, number> = {};
  for (const w of new Set([...model.layers.values()].map((l) => l.weight)))
    out[w.dtype] = (out[w.dtype] ?? 0) + w.bytes;
  return out;
}
