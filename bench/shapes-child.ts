/**
 * Child process of the `shapes` bench section: LoRA training steps of one shape through the engine's own
 * Trainer and settings schema, on one backend, then one JSON line with the step times and the process's peak
 * RSS. One process per measurement, so each peak belongs to it alone. Run bundled (bench/bundle.ts).
 *   shapes-child.mjs <model-dir> <batch> <seq> <timed-steps> <on|off> [backend]
 */
import { memoryUsage } from 'node:process';
import { fusedOpsEnabled } from '../engine/backends/fused.ts';
import { selectBackend } from '../engine/backends/index.ts';
import { bf16Kernel } from '../engine/backends/native/bf16.ts';
import { TrainingSettings } from '../engine/common/project-schema.ts';
import type { EncodedExample } from '../engine/data/tokenize.ts';
import { frozenDtypes, peakRssBytes } from './memory.ts';
import { LORA, OPTIMIZER } from './shapes.ts';
import { syntheticIds } from './synthetic.ts';

const [dir, batchArg, seqArg, stepsArg, checkpointingArg, backendArg = 'native'] = process.argv.slice(2);
if (!dir || !stepsArg || !['on', 'off'].includes(checkpointingArg)) {
  throw new Error('usage: shapes-child.mjs <model-dir> <batch> <seq> <timed-steps> <on|off> [backend]');
}
const batch = Number(batchArg);
const seq = Number(seqArg);
const steps = Number(stepsArg);
const report = await selectBackend({ prefer: backendArg });
const { attachAdapter } = await import('../engine/adapters/index.ts');
const { loadModel } = await import('../engine/models/index.ts');
const { Trainer } = await import('../engine/training/trainer.ts');
const { computeBudget } = await import('../engine/adapters/budget.ts');

const t0 = performance.now();
const model = await loadModel(dir, { task: 'causal-lm' });
const loadMs = performance.now() - t0;
const rssAfterLoadBytes = memoryUsage().rss;
const instance = attachAdapter(model, 'lora', { ...LORA }, { adapterName: 'default', seed: 0 });
const settings = TrainingSettings.parse({
  batchSize: batch,
  maxSeqLen: seq,
  maxSteps: steps + 1,
  learningRate: OPTIMIZER.lr,
  weightDecay: OPTIMIZER.weightDecay,
  beta1: OPTIMIZER.beta1,
  beta2: OPTIMIZER.beta2,
  eps: OPTIMIZER.eps,
  maxGradNorm: OPTIMIZER.maxGradNorm,
  schedule: 'constant',
  shuffle: false,
  lossOn: 'all',
  gradientCheckpointing: checkpointingArg,
});
const ids = syntheticIds(batch, seq, model.spec.vocabSize);
// every token but the first is a target, as transformers' shifted labels make it
const train: EncodedExample[] = Array.from({ length: batch }, (_, b) => ({
  inputIds: Array.from(ids.subarray(b * seq, (b + 1) * seq)),
  lossMask: Array.from({ length: seq }, (_, t) => (t === 0 ? 0 : 1)),
  file: '(synthetic)',
  line: b + 1,
  truncated: false,
}));
const trainer = new Trainer({
  model,
  instance,
  task: 'causal-lm',
  train,
  validation: [],
  settings,
  padTokenId: 0,
  checkpointing: settings.gradientCheckpointing === 'on',
});
// the studio's own estimate for these settings, to set beside the measured peak
const estimate = computeBudget(
  model.spec,
  'lora',
  { ...LORA },
  {
    batchSize: batch,
    seqLen: seq,
    checkpointing: checkpointingArg === 'on',
    weightsHeldAs: report.chosen === 'native' ? 'checkpoint' : 'float32',
    composedOps: report.chosen !== 'native' || !fusedOpsEnabled(),
  },
).memory;
const stepMs: number[] = [];
const losses: number[] = [];
for (let step = 0; step <= steps; step++) {
  const s0 = performance.now();
  const result = await trainer.step();
  const ms = performance.now() - s0;
  stepMs.push(ms);
  losses.push(result.loss);
  process.stderr.write(
    `step ${step}${step === 0 ? ' (warm-up)' : ''}: ${ms.toFixed(0)} ms, loss ${result.loss.toFixed(4)}\n`,
  );
}
const timed = stepMs.slice(1).sort((a, b) => a - b);
const frozen = frozenDtypes(model);
console.log(
  JSON.stringify({
    backend:
      (report.matmul ? `${report.chosen}:${report.matmul}` : report.chosen) +
      ('BF16' in frozen && bf16Kernel() ? ' + AVX512-BF16 kernel' : ''),
    stepMs: timed[Math.floor(timed.length / 2)],
    stepsMs: stepMs,
    losses,
    tokens: batch * seq,
    loadMs,
    rssAfterLoadBytes,
    peakRssBytes: peakRssBytes(),
    estimatedPeakBytes: estimate.total,
    frozen,
    parameters: model.spec.numParameters,
    trainable: instance.trainable().reduce((n, p) => n + p.variable.size, 0),
  }),
);
process.exit(0);
