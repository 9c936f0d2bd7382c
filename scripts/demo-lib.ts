/**
 * Shared pieces of `npm run demo` and `npm run compare-methods`: the bundled demo's paths, a project per method
 * on the demo task, the untuned baseline, timed runs, and the Markdown method table.
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MethodName } from '../engine/adapters/index.ts';
import { runRecorder } from '../engine/analysis/index.ts';
import { selectBackend } from '../engine/backends/index.ts';
import { prepareData } from '../engine/data/index.ts';
import { writeFileAtomic } from '../engine/io/atomic.ts';
import { loadModel, loadTokenizer } from '../engine/models/index.ts';
import {
  createProject,
  openProject,
  projectPath,
  type TrainingSettingsInput,
} from '../engine/project/index.ts';
import {
  evaluateExamples,
  greedyGenerator,
  type RunSummary,
  startRun,
  type TrainEvent,
} from '../engine/training/index.ts';

export const REPO_ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const DEMO_MODEL = join(REPO_ROOT, 'assets', 'demo', 'model');
export const DEMO_TRAIN = join(REPO_ROOT, 'assets', 'demo', 'data', 'train.jsonl');
export const DEMO_VALIDATION = join(REPO_ROOT, 'assets', 'demo', 'data', 'validation.jsonl');

/**
 * The validation metric of the demo task: section accuracy, the most likely of the six section names after
 * the prompt (multiple-choice scoring). The greedy answer's exact match is reported beside it: it also needs
 * the answer format (one word, then EOS) learnt, which the untuned model never produces.
 */
export const METRIC = 'choiceAccuracy';
export const GREEDY_METRIC = 'exactMatch';

/**
 * Training settings shared by every demo run. Every validation example is scored (240 greedy generations);
 * answers are at most 3 tokens, so 4 new tokens are enough to see whether the answer ends where it should.
 * No intermediate checkpoints: the run saves one at the end, which is what gets exported. Analysis is recorded
 * every 10 steps so the norm and scaling-factor time series cover the whole run.
 */
export const DEMO_TRAINING = {
  batchSize: 16,
  maxSeqLen: 96,
  schedule: 'linear',
  warmupRatio: 0.06,
  seed: 0,
  evalEvery: 0,
  exactMatchExamples: 240,
  maxNewTokens: 4,
  evalBatchSize: 48,
  checkpointEvery: 0,
  analysisEvery: 10,
  keepCheckpoints: 1,
} as const satisfies TrainingSettingsInput;

export type MethodInput = { name: MethodName; config: Record<string, unknown> };

/** A project on the bundled demo model and data (paths stored relative to the project, as `studio init` does). */
export async function createDemoProject(
  dir: string,
  method: MethodInput,
  training: TrainingSettingsInput,
  name = 'demo',
): Promise<void> {
  await createProject(dir, {
    name,
    model: DEMO_MODEL,
    task: 'causal-lm',
    data: { train: DEMO_TRAIN, validation: DEMO_VALIDATION },
    method,
    training,
    backend: 'auto',
  });
}

/** A fresh folder under the OS temp dir, or `out` (created; must be empty or new). */
export async function outputDir(out: string | undefined, prefix: string): Promise<string> {
  if (out === undefined) return await fs.mkdtemp(join(tmpdir(), `${prefix}-`));
  const dir = resolve(out);
  await fs.mkdir(dir, { recursive: true });
  const entries = await fs.readdir(dir);
  if (entries.length > 0) throw new Error(`--out ${dir} is not empty; give a new or empty folder`);
  return dir;
}

export interface Timed<T> {
  value: T;
  wallSeconds: number;
  /** Process CPU time (user + system, every thread), which other processes' load does not inflate. */
  cpuSeconds: number;
}

export async function timed<T>(fn: () => Promise<T>): Promise<Timed<T>> {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  const value = await fn();
  const used = process.cpuUsage(cpu);
  return {
    value,
    wallSeconds: (performance.now() - wall) / 1000,
    cpuSeconds: (used.user + used.system) / 1e6,
  };
}

/**
 * Scores the untuned base model of a project on its validation data, with the project's evaluation settings
 * (the same `evaluateExamples` the trainer's final evaluation uses), so before and after are comparable.
 */
export async function evaluateBaseModel(projectDir: string): Promise<Record<string, number>> {
  const { settings } = await openProject(projectDir);
  await selectBackend({ prefer: settings.backend });
  const modelDir = projectPath(projectDir, settings.model);
  const model = await loadModel(modelDir, { task: settings.task, seed: settings.training.seed });
  try {
    const tokenizer = await loadTokenizer(modelDir);
    const t = settings.training;
    const data = await prepareData(
      {
        task: settings.task,
        train: projectPath(projectDir, settings.data.train),
        validation: settings.data.validation && projectPath(projectDir, settings.data.validation),
        seed: t.seed,
      },
      tokenizer,
      { maxSeqLen: t.maxSeqLen, lossOn: t.lossOn },
    );
    return await evaluateExamples(model, settings.task, data.validation, {
      batchSize: t.evalBatchSize ?? t.batchSize,
      padTokenId: tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0,
      generate: greedyGenerator(model, tokenizer),
      exactMatchExamples: t.exactMatchExamples,
      maxNewTokens: t.maxNewTokens,
    });
  } finally {
    model.dispose();
  }
}

export interface TrainResult {
  summary: RunSummary;
  trainableParams: number;
  /** The final validation metrics (evaluated by the trainer at the last step). */
  metrics: Record<string, number>;
  /** Optimizer steps completed. */
  steps: number;
  /** Wall and CPU seconds per optimizer step, measured between the first and the last step event. */
  secondsPerStep: number;
  cpuSecondsPerStep: number;
  wallSeconds: number;
  cpuSeconds: number;
}

/** Trains one run of a project to the end; throws with the run's own error when it fails. */
export async function trainRun(
  projectDir: string,
  training: TrainingSettingsInput,
  onEvent?: (event: TrainEvent) => void,
): Promise<TrainResult> {
  let trainableParams = 0;
  let first: { step: number; wall: number; cpu: NodeJS.CpuUsage } | null = null;
  let last: { step: number; wall: number; cpu: NodeJS.CpuUsage } | null = null;
  const result = await timed(async () => {
    const handle = await startRun(projectDir, { training, recorder: runRecorder });
    handle.on('event', (event) => {
      if (event.type === 'run-started') trainableParams = event.trainableParams;
      if (event.type === 'step') {
        last = { step: event.step, wall: performance.now(), cpu: process.cpuUsage() };
        first ??= last;
      }
      onEvent?.(event);
    });
    return await handle.done;
  });
  const summary = result.value;
  if (summary.status !== 'completed') {
    throw new Error(
      `run ${summary.runDir} ended ${summary.status}${summary.error ? `: ${summary.error}` : ''}`,
    );
  }
  return {
    summary,
    trainableParams,
    metrics: summary.finalMetrics ?? {},
    steps: summary.step,
    ...perStep(first, last),
    wallSeconds: result.wallSeconds,
    cpuSeconds: result.cpuSeconds,
  };
}

function perStep(
  first: { step: number; wall: number; cpu: NodeJS.CpuUsage } | null,
  last: { step: number; wall: number; cpu: NodeJS.CpuUsage } | null,
): { secondsPerStep: number; cpuSecondsPerStep: number } {
  if (!first || !last || last.step === first.step)
    return { secondsPerStep: Number.NaN, cpuSecondsPerStep: Number.NaN };
  const n = last.step - first.step;
  const cpu = last.cpu.user + last.cpu.system - first.cpu.user - first.cpu.system;
  return { secondsPerStep: (last.wall - first.wall) / 1000 / n, cpuSecondsPerStep: cpu / 1e6 / n };
}

export function formatPercent(value: number | undefined): string {
  return value === undefined || Number.isNaN(value) ? 'n/a' : `${(100 * value).toFixed(1)} %`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** One row of the method table (the untuned baseline has no method). */
export interface MethodRow {
  label: string;
  method: string | null;
  config: Record<string, unknown> | null;
  learningRate: number | null;
  trainableParams: number;
  metrics: Record<string, number>;
  /** Seconds of the training phase: model and data loading, the steps, the final evaluation and checkpoint. */
  trainWallSeconds: number | null;
  trainCpuSeconds: number | null;
  cpuSecondsPerStep: number | null;
  exportFormat: 'peft' | 'lora' | null;
  /** Bytes of the exported `adapter_model.safetensors`. */
  adapterBytes: number | null;
  verificationMaxAbsDiff: number | null;
}

/** The table row of the untuned base model: its metrics, no method, nothing trained or exported. */
export function baselineRow(metrics: Record<string, number>): MethodRow {
  return {
    label: 'untuned base model',
    method: null,
    config: null,
    learningRate: null,
    trainableParams: 0,
    metrics,
    trainWallSeconds: null,
    trainCpuSeconds: null,
    cpuSecondsPerStep: null,
    exportFormat: null,
    adapterBytes: null,
    verificationMaxAbsDiff: null,
  };
}

function configText(row: MethodRow): string {
  if (!row.config) return '—';
  const parts = Object.entries(row.config)
    .filter(([k]) => k !== 'targetModules')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return [...parts, `lr=${row.learningRate}`].join(', ');
}

export function methodTable(rows: MethodRow[]): string {
  return markdownTable(
    [
      'method',
      'config',
      'trainable params',
      'section accuracy',
      'greedy exact match',
      'answer loss',
      'training time (wall / CPU)',
      'adapter file',
    ],
    rows.map((r) => [
      r.label,
      configText(r),
      formatCount(r.trainableParams),
      formatPercent(r.metrics[METRIC]),
      formatPercent(r.metrics[GREEDY_METRIC]),
      r.metrics.loss === undefined ? '—' : r.metrics.loss.toFixed(3),
      r.trainWallSeconds === null || r.trainCpuSeconds === null
        ? '—'
        : `${r.trainWallSeconds.toFixed(0)} s / ${r.trainCpuSeconds.toFixed(0)} s`,
      r.adapterBytes === null
        ? '—'
        : `${formatBytes(r.adapterBytes)} (${r.exportFormat === 'peft' ? 'PEFT' : 'LoRA-converted'})`,
    ]),
  );
}

/** A Markdown table; `|` inside cells is escaped so a config cannot break the layout. */
export function markdownTable(header: string[], rows: string[][]): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const line = (cells: string[]) => `| ${cells.map(cell).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/**
 * Replaces what lies between the `start` and `end` marker lines of `text` with `content`, or appends a new
 * `heading` section holding the markers and content when the markers are absent. Text outside stays as is.
 */
export function replaceBetweenMarkers(
  text: string,
  start: string,
  end: string,
  content: string,
  heading: string,
): string {
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i === -1 && j === -1) {
    const sep = text.length === 0 || text.endsWith('\n\n') ? '' : text.endsWith('\n') ? '\n' : '\n\n';
    return `${text}${sep}${heading}\n\n${start}\n${content}\n${end}\n`;
  }
  if (i === -1 || j === -1 || j < i) {
    throw new Error(`the markers ${start} and ${end} must both appear, in that order, or neither`);
  }
  return `${text.slice(0, i + start.length)}\n${content}\n${text.slice(j)}`;
}

/** Rewrites the marked section of a file (atomically). */
export async function writeMarkedSection(
  file: string,
  start: string,
  end: string,
  content: string,
  heading: string,
): Promise<void> {
  let text = '';
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await writeFileAtomic(file, replaceBetweenMarkers(text, start, end, content, heading));
}

/** Minimal `--flag value` / `--flag` parsing with a usage error that names the unknown flag. */
export function parseFlags(
  argv: string[],
  spec: Record<string, 'string' | 'number' | 'boolean'>,
): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (let k = 0; k < argv.length; k++) {
    const arg = argv[k];
    const m = /^--([a-z][a-z-]*)(?:=(.*))?$/.exec(arg);
    if (!m || !(m[1] in spec)) {
      throw new Error(
        `unknown argument "${arg}"; flags: ${Object.keys(spec)
          .map((f) => `--${f}`)
          .join(', ')}`,
      );
    }
    const [, name, inline] = m;
    const kind = spec[name];
    if (kind === 'boolean') {
      if (inline !== undefined) throw new Error(`--${name} takes no value`);
      out[name] = true;
      continue;
    }
    const value = inline ?? argv[++k];
    if (value === undefined || (inline === undefined && value.startsWith('--'))) {
      throw new Error(`--${name} needs a value`);
    }
    if (kind === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n) || value.trim() === '')
        throw new Error(`--${name} must be a number, got "${value}"`);
      out[name] = n;
    } else {
      out[name] = value;
    }
  }
  return out;
}
