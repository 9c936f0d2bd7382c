import type { AdapterInstance } from '../../adapters/types.ts';
import { writeFileAtomicWith } from '../../io/atomic.ts';
import { archConfig } from '../../models/registry.ts';
import type { LoadedModel } from '../../models/types.ts';
import { ExportError } from '../errors.ts';
import { buildLoraConversion } from '../lora.ts';
import { buildPeftAdapter, MODULE_PREFIX, type PeftAdapter } from '../peft.ts';
import type { Verification } from '../verify.ts';
import {
  type ArchInput,
  type GgufArchitecture,
  ggufArchitecture,
  ggufTensorName,
  permuteRows,
} from './arch.ts';
import {
  f32,
  GGML_QUANT_VERSION,
  type GgmlTypeName,
  type GgufTensorInfo,
  type GgufValue,
  ggufFileBytes,
  readGguf,
  str,
  u32,
  writeGguf,
} from './format.ts';
import type { GgufQuant } from './model.ts';
import { archInput } from './model.ts';
import { dequantBound, dequantize, quantize } from './quants.ts';

/** The outtypes convert_lora_to_gguf.py writes (an adapter is never quantised below 8 bits). */
export const GGUF_LORA_QUANTS = ['f32', 'f16', 'bf16', 'q8_0'] as const;
export type GgufLoraQuant = (typeof GGUF_LORA_QUANTS)[number];
const LORA_TYPE: Record<GgufLoraQuant, GgmlTypeName> = { f32: 'F32', f16: 'F16', bf16: 'BF16', q8_0: 'Q8_0' };

/** The adapter outtype that goes with a model quantisation (Q4_K_M models take an F16 adapter). */
export function loraQuantFor(quant: GgufQuant): GgufLoraQuant {
  return quant === 'q4_k_m' ? 'f16' : quant;
}

interface LoraTensor extends GgufTensorInfo {
  values: Float32Array;
}

interface LoraPlan {
  metadata: [string, GgufValue][];
  tensors: LoraTensor[];
  alpha: number;
}

/**
 * A plain PEFT LoRA (one rank, α/r scaling, no DoRA, rsLoRA, PiSSA/OLoRA residual or bias) is written as
 * convert_lora_to_gguf.py writes its PEFT files: lora_A/lora_B as saved, `adapter.lora.alpha` = lora_alpha.
 * Anything else goes through the plain-LoRA conversion (ΔW = B·A with scaling 1) and folds r_m/α into each
 * module's B, since llama.cpp scales every module by α/r_m with one α.
 */
function loraFactors(
  model: LoadedModel,
  instance: AdapterInstance,
): { adapter: PeftAdapter; alpha: number; folded: boolean } {
  if (instance.method === 'lora') {
    const peft = buildPeftAdapter(model, instance, model.dir);
    const c = peft.adapterConfig;
    const plain =
      c.use_dora !== true &&
      c.use_rslora !== true &&
      c.lora_bias !== true &&
      (c.init_lora_weights === true || c.init_lora_weights === false || c.init_lora_weights === 'gaussian') &&
      Object.keys((c.rank_pattern ?? {}) as object).length === 0 &&
      Object.keys((c.alpha_pattern ?? {}) as object).length === 0;
    if (plain) return { adapter: peft, alpha: Number(c.lora_alpha), folded: false };
  }
  const adapter = buildLoraConversion(model, instance, model.dir);
  return { adapter, alpha: Number(adapter.adapterConfig.r), folded: true };
}

function planLora(
  model: LoadedModel,
  instance: AdapterInstance,
  quant: GgufLoraQuant,
  name: string,
  architecture: GgufArchitecture,
  input: ArchInput,
): LoraPlan {
  for (const layerName of instance.layers.keys()) {
    const layer = model.layers.get(layerName);
    if (layer && layer.tiedWith.length > 0) {
      throw new ExportError(
        `${layerName} shares its weight with ${layer.tiedWith.map((l) => l.name).join(', ')} (tie_word_embeddings); llama.cpp applies a GGUF LoRA to one of them only, so export --format gguf (merged) instead`,
      );
    }
  }
  const { adapter, alpha, folded } = loraFactors(model, instance);
  const modules = new Map<
    string,
    { a?: Float32Array; b?: Float32Array; aShape?: number[]; bShape?: number[]; embedding: boolean }
  >();
  for (const key of Object.keys(adapter.tensors).sort()) {
    const m = /^(.*)\.(lora_A\.weight|lora_B\.weight|lora_embedding_A|lora_embedding_B)$/.exec(key);
    if (!m || !m[1].startsWith(MODULE_PREFIX)) {
      throw new ExportError(
        `adapter "${instance.name}": tensor ${key} is not a LoRA factor llama.cpp can apply`,
      );
    }
    const module = m[1].slice(MODULE_PREFIX.length);
    const entry = modules.get(module) ?? { embedding: m[2].startsWith('lora_embedding') };
    const t = adapter.tensors[key];
    if (m[2].includes('A')) {
      entry.a = t.data;
      entry.aShape = t.shape;
    } else {
      entry.b = t.data;
      entry.bShape = t.shape;
    }
    modules.set(module, entry);
  }
  const tensors: LoraTensor[] = [];
  for (const [module, f] of modules) {
    const weightKey = `${module}.weight`;
    const base = ggufTensorName(architecture, weightKey);
    if (base === null || !f.a || !f.b || !f.aShape || !f.bShape) {
      throw new ExportError(`adapter "${instance.name}": ${module} has no complete lora_A/lora_B pair`);
    }
    let a = f.a;
    let aShape = f.aShape;
    let b = f.b;
    const bShape = f.bShape;
    const rank = aShape[0];
    if (folded && rank !== alpha) b = b.map((v) => Math.fround(v * (rank / alpha)));
    const rewrite = architecture.rewrite(weightKey, [bShape[0], aShape[1]], input);
    // Conv1D's transpose is in the factors already (lora_a is r × in); a trimmed token_embd (gemma3) would not
    // line up with the factors' rows
    if (rewrite && rewrite.kind !== 'permute' && rewrite.kind !== 'transpose') {
      throw new ExportError(
        `adapter "${instance.name}": llama.cpp's converter rewrites ${weightKey} (${rewrite.kind}), so a LoRA on it does not apply to the base GGUF; export --format gguf (merged) instead`,
      );
    }
    if (f.embedding) {
      // lora_embedding_A (r × num) is written transposed, as the converter does for token_embd
      const t = new Float32Array(a.length);
      const [r, n] = aShape;
      for (let i = 0; i < r; i++) for (let j = 0; j < n; j++) t[j * r + i] = a[i * n + j];
      a = t;
      aShape = [n, r];
    } else if (rewrite?.kind === 'permute') {
      b = permuteRows(b, bShape, rewrite.heads);
    }
    const type = (shape: number[]): GgmlTypeName => {
      const t = LORA_TYPE[quant];
      return t === 'Q8_0' && shape[shape.length - 1] % 32 !== 0 ? 'F16' : t;
    };
    tensors.push({ name: `${base}.lora_a`, shape: aShape, type: type(aShape), values: a });
    tensors.push({ name: `${base}.lora_b`, shape: bShape, type: type(bShape), values: b });
  }
  const metadata: [string, GgufValue][] = [
    ['general.architecture', str(architecture.name)],
    ['general.type', str('adapter')],
    ['adapter.type', str('lora')],
    ['general.name', str(name)],
    ['adapter.lora.alpha', f32(alpha)],
    ['general.quantization_version', u32(GGML_QUANT_VERSION)],
  ];
  return { metadata, tensors, alpha };
}

export interface GgufLoraResult {
  bytes: number;
  alpha: number;
  tensors: number;
  verification: Verification;
}

/**
 * Writes the adapter as a GGUF LoRA (`general.type = adapter`, `adapter.type = lora`, `.lora_a`/`.lora_b`
 * under the base tensors' llama.cpp names), then reads it back: every factor's name, shape and type, and its
 * dequantised values against the factors written.
 */
export async function writeGgufLora(
  model: LoadedModel,
  instance: AdapterInstance,
  path: string,
  quant: GgufLoraQuant,
  options: { name?: string } = {},
): Promise<GgufLoraResult> {
  const arch = archConfig(model.spec.config, { task: model.spec.task });
  const architecture = ggufArchitecture(arch.modelType, arch.task);
  const input = await archInput(model.dir, model.spec.config, architecture);
  const plan = planLora(model, instance, quant, options.name ?? instance.name, architecture, input);
  const bytes = ggufFileBytes(plan.metadata, plan.tensors);
  await writeFileAtomicWith(path, bytes, async (handle) => {
    await writeGguf(handle, plan.metadata, plan.tensors, async (_t, i) =>
      quantize(plan.tensors[i].type, plan.tensors[i].values),
    );
  });
  const file = await readGguf(path);
  let worst = 0;
  let tolerance = 0;
  const problems: string[] = [];
  try {
    for (const t of plan.tensors) {
      const read = file.tensors.find((r) => r.name === t.name);
      if (!read || read.type !== t.type || read.shape.join() !== t.shape.join()) {
        problems.push(`${t.name} read back as ${read ? `${read.type} [${read.shape}]` : 'missing'}`);
        continue;
      }
      const values = dequantize(t.type, await file.readRaw(t.name), t.values.length);
      let amax = 0;
      let diff = 0;
      for (let i = 0; i < values.length; i++) {
        amax = Math.max(amax, Math.abs(t.values[i]));
        diff = Math.max(diff, Math.abs(values[i] - t.values[i]));
      }
      const bound = dequantBound(t.type, amax);
      worst = Math.max(worst, diff);
      tolerance = Math.max(tolerance, bound);
      if (!(diff <= bound)) problems.push(`${t.name}: dequantised values differ by ${diff.toExponential(3)}`);
    }
    const alpha = file.metadata.get('adapter.lora.alpha');
    if (alpha?.value !== Math.fround(plan.alpha)) problems.push('adapter.lora.alpha not read back');
  } finally {
    await file.close();
  }
  return {
    bytes,
    alpha: plan.alpha,
    tensors: plan.tensors.length,
    verification: {
      maxAbsDiff: worst,
      tolerance,
      adapterEffect: 0,
      ok: problems.length === 0,
      method: `GGUF LoRA read back: ${plan.tensors.length} lora_a/lora_b tensors' names, shapes and types, dequantised factors vs the adapter's (α = ${plan.alpha})${problems.length ? `; ${problems.slice(0, 3).join('; ')}` : ''}`,
    },
  };
}
