import type { AdapterInstance } from '../../adapters/types.ts';
import { writeFileAtomicWith } from '../../io/atomic.ts';
import type { LoadedModel } from '../../models/types.ts';
import { type CheckpointReader, openCheckpoint, type TensorEntry } from '../../safetensors/index.ts';
import { type MergedTensors, mergedTensors } from '../merged.ts';
import type { Verification } from '../verify.ts';
import { type GgmlTypeName, ggufFileBytes, readGguf, writeGguf } from './format.ts';
import {
  type GgufModelPlan,
  type GgufQuant,
  type PlannedTensor,
  planGgufModel,
  rewriteValues,
} from './model.ts';
import { dequantBound, dequantize, quantize } from './quants.ts';

export { GGUF_ARCHITECTURES } from './arch.ts';
export { type GgufFile, readGguf } from './format.ts';
export { FILE_TYPE, GGUF_QUANTS, type GgufQuant, planGgufModel } from './model.ts';
export { dequantize, quantize } from './quants.ts';

/** The checkpoint with the adapter folded in (or the base checkpoint alone), one tensor's values at a time. */
interface Source {
  ckpt: CheckpointReader;
  values(key: string): Promise<Float32Array>;
}

async function openSource(model: LoadedModel, instance: AdapterInstance | null): Promise<Source> {
  const merged: MergedTensors | null = instance ? await mergedTensors(model, instance) : null;
  const ckpt = merged?.ckpt ?? (await openCheckpoint(model.dir));
  return {
    ckpt,
    async values(key) {
      const { dtype, shape } = ckpt.info(key);
      const entry: TensorEntry = { name: key, dtype, shape };
      return merged?.valuesOf(entry) ?? (await ckpt.readFloat32(key));
    },
  };
}

async function expectedValues(source: Source, t: PlannedTensor): Promise<Float32Array> {
  if (t.source === null) return t.values!;
  const { shape, dtype } = source.ckpt.info(t.source);
  return rewriteValues(t, await source.values(t.source), shape, dtype);
}

export interface GgufWriteResult {
  plan: GgufModelPlan;
  bytes: number;
  verification: Verification;
  /** Per GGUF type, the largest |dequantised − merged| over its tensors. */
  maxAbsDiffByType: Partial<Record<GgmlTypeName, number>>;
}

/** Bytes of the GGUF file before writing it (header, metadata and aligned tensor data). */
export async function estimateGgufBytes(
  dir: string,
  quant: GgufQuant,
  options: { name?: string } = {},
): Promise<number> {
  const ckpt = await openCheckpoint(dir);
  try {
    const plan = await planGgufModel(dir, ckpt, quant, options);
    return ggufFileBytes(plan.metadata, plan.tensors);
  } finally {
    await ckpt.close();
  }
}

/**
 * Writes the model with the adapter merged (or the base model, `instance` null) as one GGUF file, a tensor at a
 * time, then reads it back with the GGUF reader: every tensor's name, shape and type must be as planned, its
 * bytes those of the quantised merged values, and its dequantised values within the type's bound of them.
 */
export async function writeGgufModel(
  model: LoadedModel,
  instance: AdapterInstance | null,
  path: string,
  quant: GgufQuant,
  options: { name?: string } = {},
): Promise<GgufWriteResult> {
  const source = await openSource(model, instance);
  let plan: GgufModelPlan;
  let bytes: number;
  try {
    plan = await planGgufModel(model.dir, source.ckpt, quant, options);
    const planned = plan;
    bytes = ggufFileBytes(planned.metadata, planned.tensors);
    // a tensor at a time, through a temp file renamed into place (a full disk is named with the bytes needed)
    await writeFileAtomicWith(path, bytes, async (handle) => {
      await writeGguf(handle, planned.metadata, planned.tensors, async (_info, i) =>
        quantize(planned.tensors[i].type, await expectedValues(source, planned.tensors[i])),
      );
    });
  } finally {
    await source.ckpt.close();
  }
  const { verification, maxAbsDiffByType } = await verifyGguf(model, instance, path, plan);
  return { plan, bytes, verification, maxAbsDiffByType };
}

async function verifyGguf(
  model: LoadedModel,
  instance: AdapterInstance | null,
  path: string,
  plan: GgufModelPlan,
): Promise<{ verification: Verification; maxAbsDiffByType: Partial<Record<GgmlTypeName, number>> }> {
  const file = await readGguf(path);
  const source = await openSource(model, instance);
  const byType: Partial<Record<GgmlTypeName, number>> = {};
  let worst = 0;
  let worstRatio = 0;
  let tolerance = 0;
  const problems: string[] = [];
  try {
    if (file.tensors.length !== plan.tensors.length) {
      problems.push(`${file.tensors.length} tensors read back, ${plan.tensors.length} written`);
    }
    for (const [key, v] of plan.metadata) {
      const got = file.metadata.get(key);
      if (!got || got.type !== v.type) problems.push(`metadata "${key}" missing or of another type`);
    }
    for (const t of plan.tensors) {
      const read = file.tensors.find((r) => r.name === t.name);
      if (!read || read.type !== t.type || read.shape.join() !== t.shape.join()) {
        problems.push(
          `tensor ${t.name}: read back as ${read ? `${read.type} [${read.shape}]` : 'missing'}, written as ${t.type} [${t.shape}]`,
        );
        continue;
      }
      const expected = await expectedValues(source, t);
      const raw = await file.readRaw(t.name);
      const again = quantize(t.type, expected);
      if (raw.length !== again.length || raw.some((b, i) => b !== again[i])) {
        problems.push(
          `tensor ${t.name}: stored bytes differ from the ${t.type} encoding of the merged values`,
        );
      }
      const values = dequantize(t.type, raw, expected.length);
      let amax = 0;
      let diff = 0;
      for (let i = 0; i < expected.length; i++) {
        amax = Math.max(amax, Math.abs(expected[i]));
        const d = Math.abs(values[i] - expected[i]);
        if (!(d <= diff)) diff = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
      }
      byType[t.type] = Math.max(byType[t.type] ?? 0, diff);
      const b = dequantBound(t.type, amax);
      worst = Math.max(worst, diff);
      tolerance = Math.max(tolerance, b);
      const ratio = b === 0 ? (diff === 0 ? 0 : Number.POSITIVE_INFINITY) : diff / b;
      worstRatio = Math.max(worstRatio, ratio);
      if (diff > b) {
        problems.push(
          `tensor ${t.name}: dequantised ${t.type} values differ by ${diff.toExponential(3)} (bound ${b.toExponential(3)})`,
        );
      }
    }
  } finally {
    await file.close();
    await source.ckpt.close();
  }
  return {
    verification: {
      maxAbsDiff: worst,
      tolerance,
      adapterEffect: 0,
      ok: problems.length === 0,
      method: `GGUF read back: ${plan.tensors.length} tensors' names, shapes, types and bytes as written; dequantised weights vs the merged weights within each type's bound (worst at ${(worstRatio * 100).toFixed(1)}% of its bound)${problems.length ? `; ${problems.slice(0, 3).join('; ')}` : ''}`,
    },
    maxAbsDiffByType: byType,
  };
}
