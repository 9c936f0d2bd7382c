/**
 * Sanity warnings: values the schemas accept but that are very likely not what was meant (a rank wider than
 * the module, a learning rate a hundred times off, a batch that will not fit). They never refuse anything:
 * they show beside their field and once more before a run starts.
 */
import type { Budget, ModelSummary } from '../../../engine/common/contract.ts';
import type { MethodName } from '../store/types.ts';
import { formatBytes } from './format.ts';

export interface SanityWarning {
  /** The form and field the warning sits beside. */
  form: 'adapter' | 'training';
  key: string;
  message: string;
}

export interface SanityInput {
  method: MethodName;
  config: Record<string, unknown>;
  model: ModelSummary | null;
  budget: Budget | null;
  /** The settings the next run will use (project settings with this window's changes). */
  training: Record<string, unknown>;
  trainExamples: number | null;
  machineMemoryBytes: number | null;
}

/**
 * Learning rates the README's sweeps tried per method (`npm run compare-methods`, the demo model, 150
 * steps): the lowest and highest tried, and the best. A rate ten times outside the tried range earns a warning;
 * a method the sweeps have not covered yet (MoSLoRA) gets none.
 */
export const sweptLearningRates: Partial<Record<MethodName, { low: number; high: number; best: number }>> = {
  lora: { low: 2e-3, high: 2e-2, best: 5e-3 },
  tlora: { low: 2e-2, high: 1e-1, best: 5e-2 },
  tinylora: { low: 5e-3, high: 1e-1, best: 1e-2 },
  vera: { low: 2e-2, high: 1.5e-1, best: 8e-2 },
  loraxs: { low: 5e-3, high: 2e-2, best: 5e-3 },
};
const FAR = 10;
/** More passes than this over the training set and the adapter mostly memorises it. */
const MANY_PASSES = 10;
/** Share of the machine's memory above which a run is unlikely to fit next to everything else. */
const MEMORY_SHARE = 0.8;

/** The budget's memory estimate of a training run: the one field the memory warning reads. */
export function estimatedMemory(budget: Budget): number {
  return budget.memoryBytes;
}

/** `model.layers.3.self_attn.q_proj` → `self_attn.q_proj`: what the module is, whatever its block. */
function role(name: string): string {
  const parts = name.split('.');
  const last = parts.findLastIndex((p) => /^\d+$/.test(p));
  return last >= 0 ? parts.slice(last + 1).join('.') : name;
}

/** 1e9 and 2e-5 as people write them, 0.02 and 512 as they are. */
function plain(x: number): string {
  const abs = Math.abs(x);
  if (abs !== 0 && (abs >= 1e5 || abs < 1e-3)) return x.toExponential().replace('e+', 'e');
  return String(x);
}

function num(x: unknown): number | null {
  return typeof x === 'number' && Number.isFinite(x) ? x : null;
}

function rankWarnings({ config, model, budget }: SanityInput): SanityWarning[] {
  const r = num(config.r);
  if (r === null || !model || !budget) return [];
  const byName = new Map(model.modules.map((m) => [m.name, m]));
  const widest = new Map<string, number>();
  let over = 0;
  for (const name of budget.targets) {
    const m = byName.get(name);
    if (m?.inFeatures === undefined || m.outFeatures === undefined) continue;
    const width = Math.min(m.inFeatures, m.outFeatures);
    if (r > width) over += 1;
    const key = role(name);
    widest.set(key, Math.min(widest.get(key) ?? Number.POSITIVE_INFINITY, width));
  }
  if (over === 0) return [];
  const useful = [...widest].map(([name, width]) => `${name} ${width}`).join(', ');
  return [
    {
      form: 'adapter',
      key: 'r',
      message:
        `r = ${r} is above min(in, out) of ${over} of the ${budget.targets.length} targeted modules: ` +
        `ΔW's rank cannot exceed it, so the extra rank only adds parameters. Largest useful rank: ${useful}.`,
    },
  ];
}

function learningRateWarnings({ method, training }: SanityInput): SanityWarning[] {
  const lr = num(training.learningRate);
  const swept = sweptLearningRates[method];
  if (lr === null || !swept) return [];
  const range = `${plain(swept.low)}–${plain(swept.high)}, best ${plain(swept.best)}`;
  if (lr > swept.high * FAR)
    return [
      {
        form: 'training',
        key: 'learningRate',
        message: `Learning rate ${plain(lr)} is over ${FAR}× the highest the README's ${method} sweeps tried (${range}): training will likely diverge.`,
      },
    ];
  if (lr < swept.low / FAR)
    return [
      {
        form: 'training',
        key: 'learningRate',
        message: `Learning rate ${plain(lr)} is under 1/${FAR} of the lowest the README's ${method} sweeps tried (${range}): the adapter will barely move.`,
      },
    ];
  return [];
}

function memoryWarnings({ budget, training, machineMemoryBytes }: SanityInput): SanityWarning[] {
  if (!budget || !machineMemoryBytes) return [];
  const bytes = estimatedMemory(budget);
  if (bytes <= machineMemoryBytes * MEMORY_SHARE) return [];
  const message =
    `Batch ${training.batchSize} × ${training.maxSeqLen} tokens needs about ${formatBytes(bytes)} to train, ` +
    `more than ${Math.round(MEMORY_SHARE * 100)} % of this machine's ${formatBytes(machineMemoryBytes)}: ` +
    'a smaller batch (with gradient accumulation) or shorter sequences fit better.';
  return [
    { form: 'training', key: 'batchSize', message },
    { form: 'training', key: 'maxSeqLen', message },
  ];
}

function scheduleWarnings({ training, trainExamples }: SanityInput): SanityWarning[] {
  const n = trainExamples;
  const batch = num(training.batchSize);
  if (!n || !batch) return [];
  const effective = batch * (num(training.gradAccumSteps) ?? 1);
  const out: SanityWarning[] = [];
  if (batch > n)
    out.push({
      form: 'training',
      key: 'batchSize',
      message: `A batch of ${batch} examples is more than the ${n} training examples.`,
    });
  const maxSteps = num(training.maxSteps);
  const epochs = num(training.epochs) ?? 1;
  const steps = maxSteps ?? Math.ceil((epochs * n) / effective);
  const passes = maxSteps !== null ? (maxSteps * effective) / n : epochs;
  if (passes > MANY_PASSES)
    out.push({
      form: 'training',
      key: maxSteps !== null ? 'maxSteps' : 'epochs',
      message:
        `${Math.round(passes)} passes over ${n} training examples: the adapter will likely memorise them ` +
        'rather than learn the task (fewer steps or more data).',
    });
  const warmup = num(training.warmupSteps);
  if (warmup !== null && warmup >= steps)
    out.push({
      form: 'training',
      key: 'warmupSteps',
      message: `Warmup of ${warmup} steps is as long as the whole run (${steps} steps): the learning rate never reaches its peak.`,
    });
  return out;
}

export function sanityWarnings(input: SanityInput): SanityWarning[] {
  return [
    ...rankWarnings(input),
    ...learningRateWarnings(input),
    ...memoryWarnings(input),
    ...scheduleWarnings(input),
  ];
}

/** Warnings of one form by field, for the form to show beside each field. */
export function warningsByField(
  warnings: SanityWarning[],
  form: SanityWarning['form'],
): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const w of warnings) {
    if (w.form !== form) continue;
    out[w.key] = [...(out[w.key] ?? []), w.message];
  }
  return out;
}
