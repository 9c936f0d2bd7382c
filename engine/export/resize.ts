import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { detachAdapter } from '../adapters/index.ts';
import type { AdapterInstance } from '../adapters/types.ts';
import {
  type ModuleSpectrum,
  proposeResize,
  type ResizeProposal,
  type ResizeSpec,
  truncatedFactors,
} from '../analysis/resize.ts';
import { lowRankSvd } from '../analysis/spectrum.ts';
import type { FrozenSnapshot, FrozenWeight } from '../backends/frozen.ts';
import { type Matrix, matrix } from '../linalg/index.ts';
import type { LoadedModel } from '../models/types.ts';
import { loadRunAdapter } from '../runs/index.ts';
import { runExamples } from '../training/eval-run.ts';
import { evaluateExamples } from '../training/evaluate.ts';
import { ExportError } from './errors.ts';
import { lowRankFactorsFromOriginal, plainLoraAdapter } from './lora.ts';
import {
  exportedModulesToSave,
  instanceTargets,
  loadPeftAdapter,
  MODULE_PREFIX,
  type PeftAdapter,
  writePeftAdapter,
} from './peft.ts';
import { withOnlyAdapter } from './verify.ts';

/** ΔW = left · right of every adapted module, against the original base weight, in float64. */
export interface AdapterFactors {
  module: string;
  kind: string;
  rows: number;
  cols: number;
  left: Matrix;
  right: Matrix;
}

export function adapterFactors(model: LoadedModel, instance: AdapterInstance): AdapterFactors[] {
  const out: AdapterFactors[] = [];
  for (const target of instanceTargets(model, instance)) {
    const layer = instance.layers.get(target.name)!;
    const factors = lowRankFactorsFromOriginal(layer);
    if (!factors) {
      throw new ExportError(
        `${instance.method} adapter "${instance.name}" at ${target.name}: the update is not low-rank (DoRA rescales the base weight), so it has no spectrum to resize by`,
      );
    }
    try {
      const [rows, k] = factors.left.shape;
      const cols = factors.right.shape[1];
      out.push({
        module: target.name,
        kind: target.kind,
        rows,
        cols,
        left: matrix(rows, k, factors.left.dataSync()),
        right: matrix(k, cols, factors.right.dataSync()),
      });
    } finally {
      factors.left.dispose();
      factors.right.dispose();
    }
  }
  if (out.length === 0) throw new ExportError(`adapter "${instance.name}" has no layers on this model`);
  return out;
}

/** Exact singular values of every module's ΔW (thin QR of both factors, SVD of the k × k core). */
export function adapterSpectra(factors: AdapterFactors[]): ModuleSpectrum[] {
  return factors.map((f) => ({
    module: f.module,
    rows: f.rows,
    cols: f.cols,
    singularValues: Array.from(lowRankSvd(f.left, f.right).s),
  }));
}

export interface ResizedAdapter {
  proposal: ResizeProposal;
  adapter: PeftAdapter;
  /** The truncated ΔW factors by module (B rows × k, A k × cols, logical orientation). */
  truncated: Map<string, { kind: string; b: Matrix; a: Matrix }>;
}

/**
 * The adapter resized by `spec` as a PEFT LoRA: per module the exact rank-k truncated SVD of ΔW, lora_B = U√S,
 * lora_A = √S Vᵀ, r = lora_alpha = k (scaling 1), modules whose new rank differs from the most common one in
 * `rank_pattern` / `alpha_pattern`.
 */
export function resizeAdapter(
  model: LoadedModel,
  instance: AdapterInstance,
  spec: ResizeSpec,
  baseModelNameOrPath: string,
): ResizedAdapter {
  const saved = exportedModulesToSave(model, instance).modules;
  if (saved.length > 0) {
    // the reference (base + truncated ΔW) and the resize itself concern the low-rank factors only
    throw new ExportError(
      `adapter "${instance.name}" also trains ${saved.join(', ')} (modules_to_save), which a spectrum resize does not cover; export --format lora without --resize`,
    );
  }
  const factors = adapterFactors(model, instance);
  const proposal = proposeResize(adapterSpectra(factors), spec);
  const tensors: PeftAdapter['tensors'] = {};
  const truncated = new Map<string, { kind: string; b: Matrix; a: Matrix }>();
  const ranks = new Map<string, number>();
  proposal.modules.forEach((m, i) => {
    const f = factors[i];
    const { b, a } = truncatedFactors(f.left, f.right, m.newRank);
    truncated.set(m.module, { kind: f.kind, b, a });
    const key = `${MODULE_PREFIX}${m.module}`;
    const k = b.cols;
    ranks.set(m.module, k);
    if (f.kind === 'Embedding') {
      // ΔW (num × dim) = B·A → lora_embedding_A = Bᵀ (k × num), lora_embedding_B = Aᵀ (dim × k)
      const ea = new Float32Array(k * f.rows);
      const eb = new Float32Array(f.cols * k);
      for (let r = 0; r < f.rows; r++) for (let j = 0; j < k; j++) ea[j * f.rows + r] = b.data[r * k + j];
      for (let j = 0; j < k; j++) for (let c = 0; c < f.cols; c++) eb[c * k + j] = a.data[j * f.cols + c];
      tensors[`${key}.lora_embedding_A`] = { shape: [k, f.rows], data: ea };
      tensors[`${key}.lora_embedding_B`] = { shape: [f.cols, k], data: eb };
    } else {
      tensors[`${key}.lora_A.weight`] = { shape: [k, f.cols], data: Float32Array.from(a.data) };
      tensors[`${key}.lora_B.weight`] = { shape: [f.rows, k], data: Float32Array.from(b.data) };
    }
  });
  return {
    proposal,
    adapter: plainLoraAdapter(model, instance, ranks, tensors, baseModelNameOrPath),
    truncated,
  };
}

/**
 * Runs `fn` with every resized module's weight set to W₀ + B·A (the truncated ΔW merged in), then puts the
 * original weights back: the reference the resized adapter's logits must equal. `model` must hold the
 * original base weights (a freshly loaded model) and no adapter.
 */
export function withTruncatedDelta<T>(
  model: LoadedModel,
  truncated: ResizedAdapter['truncated'],
  fn: () => T,
): T {
  const saved: { weight: FrozenWeight; snapshot: FrozenSnapshot }[] = [];
  try {
    for (const [name, { kind, b, a }] of truncated) {
      const layer = model.layers.get(name);
      if (!layer) throw new ExportError(`resized module ${name} is not in ${model.dir}`);
      const stored = tf.tidy(() => {
        const delta = tf.matMul(
          tf.tensor2d(Float32Array.from(b.data), [b.rows, b.cols]),
          tf.tensor2d(Float32Array.from(a.data), [a.rows, a.cols]),
        );
        return tf.add(
          layer.weight.toTensor(),
          kind === 'Conv1D' ? tf.transpose(delta) : delta,
        ) as tf.Tensor2D;
      });
      saved.push({ weight: layer.weight, snapshot: layer.weight.snapshot() });
      layer.weight.replace(stored);
      stored.dispose();
    }
    return fn();
  } finally {
    for (const { weight, snapshot } of saved.reverse()) weight.restore(snapshot);
  }
}

export interface ResizeValidation {
  /** Validation examples the losses are measured on. */
  examples: number;
  /** Token-weighted loss of the adapter as trained, of the resized adapter, and of the base model alone. */
  lossOriginal: number;
  lossResized: number;
  lossBase: number;
}

export interface RunResize {
  runDir: string;
  checkpoint: string;
  proposal: ResizeProposal;
  validation: ResizeValidation | null;
}

/** The validation loss with only `adapterName` live (null: the base model). */
async function lossWith(
  model: LoadedModel,
  adapterName: string | null,
  evaluate: () => Promise<Record<string, number>>,
): Promise<number> {
  return (await withOnlyAdapter(model, adapterName, evaluate)).loss;
}

/**
 * The resize of a run's adapter (its latest checkpoint, or the given one) by `spec`: per-module ranks from the
 * exact spectra of ΔW, and, with `validate`, the validation loss of the resized adapter next to the original's
 * and the base model's (measured on the run's own validation examples; null when the run has none). Nothing
 * is written.
 */
export async function proposeRunResize(
  runOrCheckpointDir: string,
  spec: ResizeSpec,
  options: { validate?: boolean } = {},
): Promise<RunResize> {
  const loaded = await loadRunAdapter(runOrCheckpointDir);
  const runDir = resolve(loaded.checkpoint, '..', '..');
  const tmp = await fs.mkdtemp(join(tmpdir(), 'studio-resize-'));
  try {
    const resized = resizeAdapter(loaded.model, loaded.instance, spec, loaded.model.dir);
    let validation: ResizeValidation | null = null;
    const examples = options.validate ? await runExamples(loaded, undefined, { allowNone: true }) : [];
    if (examples.length > 0) {
      const training = loaded.runConfig.training;
      const evaluate = () =>
        evaluateExamples(loaded.model, loaded.runConfig.task, examples, {
          batchSize: training.evalBatchSize ?? training.batchSize,
          padTokenId: loaded.tokenizer.padTokenId ?? loaded.tokenizer.eosTokenId ?? 0,
          exactMatchExamples: 0,
          maxNewTokens: training.maxNewTokens,
        });
      await writePeftAdapter(tmp, resized.adapter);
      const name = 'resized';
      await loadPeftAdapter(loaded.model, tmp, { adapterName: name });
      try {
        validation = {
          examples: examples.length,
          lossOriginal: await lossWith(loaded.model, loaded.instance.name, evaluate),
          lossResized: await lossWith(loaded.model, name, evaluate),
          lossBase: await lossWith(loaded.model, null, evaluate),
        };
      } finally {
        detachAdapter(loaded.model, name);
      }
    }
    return { runDir, checkpoint: loaded.checkpoint, proposal: resized.proposal, validation };
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
    detachAdapter(loaded.model, loaded.instance.name);
    loaded.model.dispose();
  }
}
