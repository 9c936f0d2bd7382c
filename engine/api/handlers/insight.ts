import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { computeBudget } from '../../adapters/budget.ts';
import { setAdaptersEnabled } from '../../adapters/index.ts';
import {
  compareRuns as compareRunAdapters,
  type EigenJob,
  eigenDir,
  eigenMatrices,
  startEigenJob,
} from '../../analysis/index.ts';
import { parseResizeSpec } from '../../analysis/resize.ts';
import { ApiError, type EigenResult, type RunComparison } from '../../common/contract.ts';
import { describeError } from '../../common/errors.ts';
import { estimateGgufBytes, exportRun, GGUF_QUANTS, proposeRunResize } from '../../export/index.ts';
import { generate, inferenceContext } from '../../models/index.ts';
import { projectOfRun, projectPath, readRunRecord } from '../../project/index.ts';
import { readRunEvents } from '../../runs/index.ts';
import { modelSpec } from './budget.ts';
import { type Handlers, type ServiceContext, stateOf } from './context.ts';
import { runAdapter } from './loaded.ts';
import { metricsOf, runInfo } from './runs.ts';

/** Flattens the two configs into dotted keys and lists the ones that differ. */
export function configDiff(a: unknown, b: unknown, prefix = ''): RunComparison['configDiff'] {
  const isObject = (x: unknown): x is Record<string, unknown> =>
    typeof x === 'object' && x !== null && !Array.isArray(x);
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => configDiff(a[k], b[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [{ key: prefix || '(config)', a, b }];
}

async function compareRuns(
  ctx: ServiceContext,
  runA: string,
  runB: string,
  maxPoints: number,
): Promise<RunComparison> {
  const [infoA, infoB] = await Promise.all([runInfo(ctx, runA), runInfo(ctx, runB)]);
  const [eventsA, eventsB] = await Promise.all([
    readRunEvents(runA).catch(() => []),
    readRunEvents(runB).catch(() => []),
  ]);
  const result: RunComparison = {
    runA: infoA,
    runB: infoB,
    configDiff: configDiff(infoA.config, infoB.config).filter((d) => d.key !== 'name'),
    metricsA: metricsOf(runA, eventsA, maxPoints),
    metricsB: metricsOf(runB, eventsB, maxPoints),
    similarity: [],
    deltaNorms: [],
  };
  if (!infoA.lastCheckpoint || !infoB.lastCheckpoint) return result;
  const { comparison } = await compareRunAdapters(runA, runB);
  const modules = comparison.modules.map((m) => m.module);
  const column = (pick: (m: (typeof comparison.modules)[number]) => number | null) =>
    comparison.modules.map((m) => [pick(m)]);
  result.similarity = [
    {
      name: 'cosine(ΔW_A, ΔW_B) per module',
      rowLabels: modules,
      colLabels: ['cos'],
      matrix: column((m) => m.cosineDelta),
    },
    {
      name: 'subspace similarity (left | right) per module',
      rowLabels: modules,
      colLabels: ['left', 'right'],
      matrix: comparison.modules.map((m) => [
        m.subspace?.left.similarity ?? null,
        m.subspace?.right.similarity ?? null,
      ]),
    },
  ];
  if (comparison.difference) {
    const d = comparison.difference;
    result.similarity.push({
      name: `ΔW_A − ΔW_B · ${d.module} (block means)`,
      rowLabels: Array.from({ length: d.rows }, (_, i) => String(i)),
      colLabels: Array.from({ length: d.cols }, (_, j) => String(j)),
      matrix: Array.from({ length: d.rows }, (_, i) => d.values.slice(i * d.cols, (i + 1) * d.cols)),
    });
  }
  result.deltaNorms = comparison.modules.map((m) => ({ module: m.module, a: m.normA, b: m.normB }));
  return result;
}

interface EigenState {
  jobs: Map<string, EigenJob[]>;
}

function eigenState(ctx: ServiceContext): EigenState {
  return stateOf(ctx, 'eigen', () => {
    const state: EigenState = { jobs: new Map() };
    ctx.onDispose(() => {
      for (const jobs of state.jobs.values()) for (const j of jobs) j.cancel();
    });
    return state;
  });
}

function toPoints(re: number[], im: number[]): EigenResult['base'] {
  return re.map((r, i) => ({ re: r, im: im[i] ?? 0 }));
}

async function runEigen(ctx: ServiceContext, jobId: string, runDir: string, module: string): Promise<void> {
  const state = eigenState(ctx);
  const progress = (fraction: number, message: string) =>
    ctx.emit({ type: 'eigen.progress', jobId, runDir, module, fraction, message });
  try {
    progress(0, 'loading the adapter');
    const { instance, model } = await runAdapter(ctx, runDir);
    const { base, adapted } = await eigenMatrices(instance, model, module);
    if (!state.jobs.has(jobId)) return;
    const fractions = [0, 0];
    const start = (which: 'base' | 'adapted', matrix: typeof base, i: number) =>
      startEigenJob(
        { module, which, matrix },
        {
          cacheDir: eigenDir(runDir),
          onProgress: (f) => {
            fractions[i] = f;
            progress(
              (fractions[0] + fractions[1]) / 2,
              `eigenvalues of ${which === 'base' ? 'W₀' : 'W₀ + ΔW'} (${base.rows}×${base.cols})`,
            );
          },
        },
      );
    const jobs = [start('base', base, 0), start('adapted', adapted, 1)];
    state.jobs.set(jobId, jobs);
    const [b, a] = await Promise.all(jobs.map((j) => j.done));
    ctx.emit({
      type: 'eigen.done',
      jobId,
      runDir,
      result: { module, base: toPoints(b.re, b.im), adapted: toPoints(a.re, a.im) },
    });
  } catch (error) {
    if (!state.jobs.has(jobId)) return;
    ctx.emit({ type: 'eigen.failed', jobId, runDir, error: describeError(error).message });
  } finally {
    state.jobs.delete(jobId);
  }
}

/** Bytes of each export format for the run's adapter, from its frozen config (nothing is loaded). */
async function estimate(runDir: string): Promise<Record<string, number>> {
  const record = await readRunRecord(runDir);
  const cfg = record.config;
  const numLabels = cfg.task === 'seq-cls' ? (record.labels ?? cfg.data.labels)?.length : undefined;
  const spec = await modelSpec(projectPath(projectOfRun(runDir), cfg.model), cfg.task, numLabels);
  const budget = computeBudget(spec, cfg.method.name, cfg.method.config);
  const out: Record<string, number> = {};
  for (const [format, bytes] of Object.entries(budget.files))
    if (typeof bytes === 'number') out[format] = bytes;
  if (cfg.task === 'causal-lm') {
    const modelDir = projectPath(projectOfRun(runDir), cfg.model);
    for (const quant of GGUF_QUANTS) {
      // an architecture or tokenizer GGUF export refuses has no estimate (the export says why)
      const bytes = await estimateGgufBytes(modelDir, quant).catch(() => null);
      if (bytes !== null) out[`gguf-${quant}`] = bytes;
    }
  }
  return out;
}

function resizeSpec(text: string) {
  try {
    return parseResizeSpec(text);
  } catch (error) {
    throw new ApiError('invalid_input', (error as Error).message);
  }
}

function softmax(logits: Float32Array): number[] {
  const max = Math.max(...logits);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

export const insightHandlers: Pick<
  Handlers,
  | 'analysis.compare'
  | 'analysis.eigen.start'
  | 'analysis.eigen.cancel'
  | 'export.estimate'
  | 'export.run'
  | 'export.resize'
  | 'tryit.generate'
  | 'tryit.classify'
> = {
  async 'analysis.compare'({ runA, runB, maxPoints }, ctx) {
    return compareRuns(ctx, runA, runB, maxPoints);
  },
  async 'analysis.eigen.start'({ runDir, module }, ctx) {
    const jobId = randomBytes(6).toString('hex');
    eigenState(ctx).jobs.set(jobId, []);
    void runEigen(ctx, jobId, runDir, module);
    return { jobId };
  },
  async 'analysis.eigen.cancel'({ jobId }, ctx) {
    const state = eigenState(ctx);
    const jobs = state.jobs.get(jobId);
    if (!jobs) return { cancelled: false };
    state.jobs.delete(jobId);
    for (const j of jobs) j.cancel();
    return { cancelled: true };
  },
  async 'export.estimate'({ runDir }) {
    return estimate(runDir);
  },
  async 'export.resize'({ runDir, resize, validate }) {
    const { checkpoint, proposal, validation } = await proposeRunResize(runDir, resizeSpec(resize), {
      validate,
    });
    return { checkpoint, proposal, validation };
  },
  async 'export.run'({ runDir, format, out, quant, resize }) {
    const result = await exportRun(runDir, {
      format,
      out,
      quant,
      resize: resize === undefined ? undefined : resizeSpec(resize),
    });
    const { promises: fs } = await import('node:fs');
    const files = await Promise.all(
      result.files.map(async (path) => ({ path, bytes: (await fs.stat(join(result.out, path))).size })),
    );
    const v = result.verification;
    return {
      format: result.format,
      out: result.out,
      files,
      bytes: result.bytes,
      verification: {
        ok: v.ok,
        maxAbsDiff: v.maxAbsDiff,
        detail: `${v.method}; tolerance ${v.tolerance.toExponential(2)}, the adapter itself moves outputs by up to ${v.adapterEffect.toExponential(2)}`,
      },
      ...(result.resize ? { resize: result.resize } : {}),
    };
  },
  async 'tryit.generate'({ runDir, prompt, options }, ctx) {
    const { model, tokenizer, checkpoint } = await runAdapter(ctx, runDir);
    if (model.spec.task !== 'causal-lm')
      throw new ApiError('invalid_input', 'this run trains a classifier: use classify');
    const settings = {
      maxNewTokens: options.maxNewTokens,
      temperature: options.mode === 'greedy' ? 0 : options.temperature,
      topK: options.topK,
      seed: options.seed,
    };
    const side = async (enabled: boolean) => {
      setAdaptersEnabled(model, enabled);
      const started = performance.now();
      try {
        const r = await generate(model, tokenizer, prompt, settings);
        return { text: r.text, tokens: r.ids.length, ms: performance.now() - started };
      } finally {
        setAdaptersEnabled(model, true);
      }
    };
    const base = await side(false);
    const adapted = await side(true);
    return { base, adapted, checkpoint };
  },
  async 'tryit.classify'({ runDir, text }, ctx) {
    const { model, tokenizer, checkpoint, record } = await runAdapter(ctx, runDir);
    if (model.spec.task !== 'seq-cls')
      throw new ApiError('invalid_input', 'this run trains a language model: use generate');
    const ids = tokenizer.encode(text);
    const labels = record.labels ?? Array.from({ length: model.spec.numLabels ?? 2 }, (_, i) => `LABEL_${i}`);
    const side = (enabled: boolean) => {
      setAdaptersEnabled(model, enabled);
      try {
        const logits = tf.tidy(() => {
          const batch = {
            inputIds: tf.tensor2d([ids], [1, ids.length], 'int32'),
            attentionMask: tf.ones([1, ids.length], 'int32') as tf.Tensor2D,
          };
          return model.forward(batch, inferenceContext());
        });
        const p = softmax(logits.dataSync() as Float32Array);
        logits.dispose();
        const probabilities = p.map((v, i) => ({ label: labels[i] ?? String(i), p: v }));
        const best = probabilities.reduce((x, y) => (y.p > x.p ? y : x));
        return { label: best.label, probabilities };
      } finally {
        setAdaptersEnabled(model, true);
      }
    };
    return { base: side(false), adapted: side(true), checkpoint };
  },
};
