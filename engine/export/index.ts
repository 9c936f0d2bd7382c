import { promises as fs } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { detachAdapter } from '../adapters/index.ts';
import type { AdapterInstance } from '../adapters/types.ts';
import type { ResizeProposal, ResizeSpec } from '../analysis/resize.ts';
import { writeDirAtomic, writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { loadModel } from '../models/index.ts';
import type { LoadedModel } from '../models/types.ts';
import { loadRunAdapter } from '../runs/index.ts';
import { ExportError } from './errors.ts';
import { GGUF_QUANTS, type GgufQuant, writeGgufModel } from './gguf/index.ts';
import { loraQuantFor, writeGgufLora } from './gguf/lora.ts';
import { buildModelfile } from './gguf/ollama.ts';
import { buildLoraConversion } from './lora.ts';
import { EXPORT_MARKER } from './marker.ts';
import { writeMergedModel } from './merged.ts';
import { writeNativeCheckpoint } from './native.ts';
import { buildPeftAdapter, exportedModulesToSave, loadPeftAdapter, writePeftAdapter } from './peft.ts';
import { resizeAdapter, withTruncatedDelta } from './resize.ts';
import {
  disposeBatch,
  maxAbs,
  maxAbsDiff,
  probeBatch,
  probeOutputs,
  RELATIVE_TOLERANCE,
  type Verification,
  withOnlyAdapter,
} from './verify.ts';

export { ExportError } from './errors.ts';
export { estimateGgufBytes, GGUF_QUANTS, type GgufQuant } from './gguf/index.ts';
export { buildLoraConversion } from './lora.ts';
export { EXPORT_MARKER } from './marker.ts';
export { writeMergedModel } from './merged.ts';
export { writeNativeCheckpoint } from './native.ts';
export {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  adapterConfigText,
  buildPeftAdapter,
  loadPeftAdapter,
  readAdapterConfig,
  writePeftAdapter,
} from './peft.ts';
export { pythonJsonDumps } from './pyjson.ts';
export { proposeRunResize, type RunResize } from './resize.ts';
export type { Verification } from './verify.ts';

export const exportFormats = ['peft', 'lora', 'merged', 'native', 'gguf', 'gguf-lora'] as const;
export type ExportFormat = (typeof exportFormats)[number];

export interface ExportOptions {
  format: ExportFormat;
  /** The output folder; built in a temp sibling and renamed into place once verified. */
  out: string;
  /** Which adapter to export (default: the run's adapter). */
  adapterName?: string;
  /** `base_model_name_or_path` in adapter_config.json (default: the model folder). */
  baseModelNameOrPath?: string;
  /** Largest shard of a merged model that was not sharded before. */
  maxShardBytes?: number;
  /** gguf / gguf-lora: the model file's quantisation (default f16). */
  quant?: GgufQuant;
  /** lora: resize each module's rank by ΔW's spectrum (exact truncated SVD), see engine/analysis/resize.ts. */
  resize?: ResizeSpec;
  /** Replace `out` even when it is a non-empty folder that no export wrote (the CLI's `--force`). */
  force?: boolean;
}

export interface ExportResult {
  format: ExportFormat;
  out: string;
  /** Files written, as paths inside `out`. */
  files: string[];
  bytes: number;
  verification: Verification;
  /** The per-module ranks a resized export was written with. */
  resize?: ResizeProposal;
}

/**
 * The output folder is replaced as a whole, so it must not hold the sources (the base model, the run) and
 * must be new, empty, or an earlier export; `force` (the CLI's `--force`) replaces any other folder too.
 */
async function checkOutDir(out: string, sources: string[], force = false): Promise<void> {
  const target = resolve(out);
  for (const source of sources) {
    const s = resolve(source);
    if (s === target || s.startsWith(target + sep)) {
      throw new ExportError(
        `--out ${out} would replace ${source}, which the export reads; choose another folder`,
      );
    }
  }
  let entries: string[];
  try {
    const stat = await fs.stat(target);
    if (!stat.isDirectory()) throw new ExportError(`${out} exists and is not a folder`);
    entries = await fs.readdir(target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (entries.length > 0 && !entries.includes(EXPORT_MARKER) && !force) {
    throw new ExportError(
      `${out} is not empty and was not written by an export (no ${EXPORT_MARKER}); an export replaces its folder as a whole, so choose a new or empty folder (studio export --force replaces it with everything in it)`,
    );
  }
}

/** Marks a finished export folder (see `EXPORT_MARKER`). */
async function writeMarker(dir: string, format: ExportFormat, source: string): Promise<void> {
  await writeJsonAtomic(join(dir, EXPORT_MARKER), {
    format,
    source: resolve(source),
    exportedAt: new Date().toISOString(),
  });
}

/** The files an export wrote, besides its marker. */
async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    const path = relative(dir, join(entry.parentPath, entry.name));
    if (entry.isFile() && path !== EXPORT_MARKER) out.push(path);
  }
  return out.sort();
}

async function totalBytes(dir: string, files: string[]): Promise<number> {
  let sum = 0;
  for (const f of files) sum += (await fs.stat(join(dir, f))).size;
  return sum;
}

/**
 * Builds `out` in a temp sibling, renames it into place only when `build`'s verification passes, and lists what
 * was written. The one place every format's verification is held to.
 */
async function writeVerified(
  out: string,
  marker: { format: ExportFormat; source: string },
  what: string,
  build: (tmp: string) => Promise<Verification>,
): Promise<Omit<ExportResult, 'format'>> {
  let verification: Verification | null = null;
  await writeDirAtomic(out, async (tmp) => {
    const v = await build(tmp);
    verification = v;
    if (!v.ok) {
      throw new ExportError(
        `${what} failed verification: ${v.method}; max |Δ| ${v.maxAbsDiff.toExponential(3)} (tolerance ${v.tolerance.toExponential(3)}); nothing was written to ${out}`,
      );
    }
    await writeMarker(tmp, marker.format, marker.source);
  });
  const files = await listFiles(out);
  return { out, files, bytes: await totalBytes(out, files), verification: verification! };
}

/** A reloaded export's logits against the in-memory adapted model's. */
function logitVerification(
  reference: Float32Array,
  candidate: Float32Array,
  adapterEffect: number,
  tolerance: number,
  method: string,
): Verification {
  const diff = maxAbsDiff(reference, candidate);
  return { maxAbsDiff: diff, tolerance, adapterEffect, ok: diff <= tolerance, method };
}

function checkQuant(quant: string): GgufQuant {
  if (!(GGUF_QUANTS as readonly string[]).includes(quant)) {
    throw new ExportError(`unknown GGUF quantisation "${quant}"; choose one of ${GGUF_QUANTS.join(', ')}`);
  }
  return quant as GgufQuant;
}

/**
 * The merged model as one GGUF (gguf), or the base model's GGUF beside the adapter as a GGUF LoRA (gguf-lora),
 * with an Ollama Modelfile; verified by reading the files back (tensor by tensor against the merged weights,
 * factor by factor against the adapter).
 */
async function exportGguf(
  model: LoadedModel,
  instance: AdapterInstance,
  options: { format: 'gguf' | 'gguf-lora'; out: string; quant?: string; adapterEffect: number },
): Promise<ExportResult> {
  const quant = checkQuant(options.quant ?? 'f16');
  const result = await writeVerified(
    options.out,
    { format: options.format, source: model.dir },
    `${options.format} export of adapter "${instance.name}"`,
    async (tmp) => {
      const modelFile = `model-${quant}.gguf`;
      if (options.format === 'gguf') {
        const written = await writeGgufModel(model, instance, join(tmp, modelFile), quant);
        const modelfile = buildModelfile({ from: `./${modelFile}`, ...written.plan });
        await writeFileAtomic(join(tmp, 'Modelfile'), modelfile.text);
        return { ...written.verification, adapterEffect: options.adapterEffect };
      }
      const loraQuant = loraQuantFor(quant);
      const adapterFile = `adapter-${loraQuant}.gguf`;
      const lora = await writeGgufLora(model, instance, join(tmp, adapterFile), loraQuant);
      const base = await writeGgufModel(model, null, join(tmp, modelFile), quant);
      const modelfile = buildModelfile({ from: `./${modelFile}`, adapter: `./${adapterFile}`, ...base.plan });
      await writeFileAtomic(join(tmp, 'Modelfile'), modelfile.text);
      return {
        maxAbsDiff: Math.max(lora.verification.maxAbsDiff, base.verification.maxAbsDiff),
        tolerance: Math.max(lora.verification.tolerance, base.verification.tolerance),
        adapterEffect: options.adapterEffect,
        ok: lora.verification.ok && base.verification.ok,
        method: `${lora.verification.method}; base model ${base.verification.method}`,
      };
    },
  );
  return { format: options.format, ...result };
}

/**
 * Exports one adapter of an in-memory model as a PEFT adapter, a plain-LoRA conversion, a merged model
 * folder or GGUF, then verifies it by reloading (PEFT/LoRA: onto a freshly loaded base model through
 * `loadPeftAdapter`; merged: `loadModel` of the written folder; GGUF: reading the files back) and comparing
 * with the in-memory adapted model. A failed verification is an error and leaves `out` untouched.
 */
export async function exportAdapter(
  model: LoadedModel,
  instance: AdapterInstance,
  options: Omit<ExportOptions, 'format' | 'adapterName'> & { format: Exclude<ExportFormat, 'native'> },
): Promise<ExportResult> {
  const { format, out } = options;
  await checkOutDir(out, [model.dir], options.force);
  const baseName = options.baseModelNameOrPath ?? model.dir;
  const task = { task: model.spec.task, numLabels: model.spec.numLabels };
  // Adapter files carry a module the checkpoint lacks only as modules_to_save (a seq-cls head always is).
  // The GGUF model file holds whole merged weights, so only gguf-lora's base file can miss such a module.
  const whole = format === 'merged' || format === 'gguf';
  const carried = whole || format === 'gguf-lora' ? [] : exportedModulesToSave(model, instance).modules;
  const lost = whole ? [] : (model.newlyInitialized ?? []).filter((n) => !carried.includes(n));
  if (lost.length > 0) {
    throw new ExportError(
      `the model's ${lost.join(', ')} ${lost.length === 1 ? 'was' : 'were'} initialised at random (not in ${model.dir}) and ${format} adapter files do not carry it; add it to modulesToSave or export --format merged instead`,
    );
  }
  const batch = probeBatch(model.spec.vocabSize);
  try {
    const reference = withOnlyAdapter(model, instance.name, () => probeOutputs(model, batch));
    const base = withOnlyAdapter(model, null, () => probeOutputs(model, batch));
    const adapterEffect = maxAbsDiff(reference, base);
    if (format === 'gguf' || format === 'gguf-lora') {
      return await exportGguf(model, instance, { format, out, quant: options.quant, adapterEffect });
    }
    if (options.resize) {
      if (format !== 'lora') throw new ExportError(`--resize applies to --format lora, not ${format}`);
      const resized = resizeAdapter(model, instance, options.resize, baseName);
      const result = await writeVerified(
        out,
        { format, source: model.dir },
        `resized lora export of adapter "${instance.name}"`,
        async (tmp) => {
          await writePeftAdapter(tmp, resized.adapter);
          const candidate = await reloadOutputs(model, 'lora', tmp, task, batch);
          const fresh = await loadModel(model.dir, task);
          let truncated: Float32Array;
          try {
            truncated = withTruncatedDelta(fresh, resized.truncated, () =>
              withOnlyAdapter(fresh, null, () => probeOutputs(fresh, batch)),
            );
          } finally {
            fresh.dispose();
          }
          return logitVerification(
            truncated,
            candidate,
            adapterEffect,
            RELATIVE_TOLERANCE.F32 * Math.max(1, maxAbs(truncated)),
            `loadPeftAdapter of the resized adapter onto a fresh base vs that base with each module's truncated ΔW merged in, logits on a probe batch (resizing moved the logits by ${maxAbsDiff(reference, truncated).toExponential(2)})`,
          );
        },
      );
      return { format, ...result, resize: resized.proposal };
    }
    const result = await writeVerified(
      out,
      { format, source: model.dir },
      `${format} export of adapter "${instance.name}"`,
      async (tmp) => {
        let dtypes = ['F32'];
        if (format === 'peft' || format === 'lora') {
          const adapter =
            format === 'peft'
              ? buildPeftAdapter(model, instance, baseName)
              : buildLoraConversion(model, instance, baseName);
          await writePeftAdapter(tmp, adapter);
        } else {
          dtypes = (await writeMergedModel(model, instance, tmp, { maxShardBytes: options.maxShardBytes }))
            .dtypes;
        }
        const candidate = await reloadOutputs(model, format, tmp, task, batch);
        const relative = Math.max(...dtypes.map((d) => RELATIVE_TOLERANCE[d] ?? RELATIVE_TOLERANCE.F32));
        return logitVerification(
          reference,
          candidate,
          adapterEffect,
          relative * Math.max(1, maxAbs(reference)),
          format === 'merged'
            ? 'loadModel of the merged folder vs the in-memory adapted model, logits on a probe batch'
            : 'loadPeftAdapter onto a freshly loaded base model vs the in-memory adapted model, logits on a probe batch',
        );
      },
    );
    return { format, ...result };
  } finally {
    disposeBatch(batch);
  }
}

async function reloadOutputs(
  model: LoadedModel,
  format: 'peft' | 'lora' | 'merged',
  dir: string,
  task: { task: LoadedModel['spec']['task']; numLabels?: number },
  batch: ReturnType<typeof probeBatch>,
): Promise<Float32Array> {
  const fresh = await loadModel(format === 'merged' ? dir : model.dir, task);
  try {
    if (format === 'merged') return withOnlyAdapter(fresh, null, () => probeOutputs(fresh, batch));
    const name = 'export-check';
    await loadPeftAdapter(fresh, dir, { adapterName: name });
    try {
      return withOnlyAdapter(fresh, name, () => probeOutputs(fresh, batch));
    } finally {
      detachAdapter(fresh, name);
    }
  } finally {
    fresh.dispose();
  }
}

/** `base_model_name_or_path`: the config's `_name_or_path` when it names a model, else the model folder. */
function defaultBaseName(model: LoadedModel): string {
  const name = model.spec.config._name_or_path;
  return typeof name === 'string' && name.trim() !== '' ? name : model.dir;
}

/**
 * Exports a run's adapter (its latest checkpoint) or one checkpoint: `peft` (PEFT adapter folder),
 * `lora` (plain-LoRA conversion), `merged` (full model folder) or `native` (a self-contained run folder
 * that `resumeRun` continues). Every format is written to a temp folder, verified by reloading, then
 * renamed to `out`.
 */
export async function exportRun(runOrCheckpointDir: string, options: ExportOptions): Promise<ExportResult> {
  if (!(exportFormats as readonly string[]).includes(options.format)) {
    throw new ExportError(`unknown export format "${options.format}"; formats: ${exportFormats.join(', ')}`);
  }
  await checkOutDir(options.out, [runOrCheckpointDir], options.force);
  const loaded = await loadRunAdapter(runOrCheckpointDir);
  const { model, instance } = loaded;
  try {
    if (options.adapterName !== undefined && options.adapterName !== instance.name) {
      throw new ExportError(
        `${loaded.checkpoint}: the run's adapter is named "${instance.name}", not "${options.adapterName}"`,
      );
    }
    if (options.format !== 'native') {
      return await exportAdapter(model, instance, {
        ...options,
        format: options.format,
        baseModelNameOrPath: options.baseModelNameOrPath ?? defaultBaseName(model),
      });
    }
    await checkOutDir(options.out, [model.dir], options.force);
    return await exportNative(loaded.checkpoint, model, instance.name, options.out);
  } finally {
    detachAdapter(model, instance.name);
    model.dispose();
  }
}

/** Native export, verified by loading the copy with `loadRunAdapter` and comparing logits (bit-identical expected). */
async function exportNative(
  checkpoint: string,
  model: LoadedModel,
  adapterName: string,
  out: string,
): Promise<ExportResult> {
  const batch = probeBatch(model.spec.vocabSize);
  try {
    const reference = withOnlyAdapter(model, adapterName, () => probeOutputs(model, batch));
    const base = withOnlyAdapter(model, null, () => probeOutputs(model, batch));
    const result = await writeVerified(
      out,
      { format: 'native', source: checkpoint },
      `native export of ${checkpoint}`,
      async (tmp) => {
        await writeNativeCheckpoint(checkpoint, tmp);
        const copy = await loadRunAdapter(tmp);
        let candidate: Float32Array;
        try {
          candidate = withOnlyAdapter(copy.model, copy.instance.name, () => probeOutputs(copy.model, batch));
        } finally {
          detachAdapter(copy.model, copy.instance.name);
          copy.model.dispose();
        }
        return logitVerification(
          reference,
          candidate,
          maxAbsDiff(reference, base),
          0,
          'loadRunAdapter of the exported run folder vs the source checkpoint, logits on a probe batch',
        );
      },
    );
    return { format: 'native', ...result };
  } finally {
    disposeBatch(batch);
  }
}
