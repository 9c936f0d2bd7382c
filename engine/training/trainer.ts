import * as tf from '@tensorflow/tfjs-core';
import type { AdapterInstance, TrainableParam } from '../adapters/types.ts';
import type { TrainingSettings } from '../common/project-schema.ts';
import { DataCursor, type DataPosition, padBatch } from '../data/batches.ts';
import type { EncodedExample } from '../data/tokenize.ts';
import { trainingContext } from '../models/layers.ts';
import type { LoadedModel, TaskKind } from '../models/types.ts';
import { batchTensors, disposeBatch } from './batch.ts';
import { evaluateExamples, type Generator } from './evaluate.ts';
import { causalLmLossOfModel, classificationLossSum } from './loss.ts';
import { AdamW, clipFactor, gradSquaredSum } from './optimizer.ts';
import { lrFactor } from './schedule.ts';

/** Everything besides tensors that a checkpoint needs to continue a run bit for bit. */
export interface TrainerState {
  /** Optimizer steps completed. */
  step: number;
  position: DataPosition;
  /** Consecutive steps skipped for a non-finite loss or gradient. */
  nonFiniteInARow: number;
  best: number | null;
  evalsWithoutImprovement: number;
  tokensSeen: number;
}

/** The state of a trainer that has not taken a step. */
export function initialTrainerState(): TrainerState {
  return {
    step: 0,
    position: { epoch: 0, offset: 0 },
    nonFiniteInARow: 0,
    best: null,
    evalsWithoutImprovement: 0,
    tokensSeen: 0,
  };
}

export interface StepResult {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokens: number;
  /** Set when the update was skipped for a non-finite value. */
  skipped: boolean;
}

export interface TrainerSetup {
  model: LoadedModel;
  instance: AdapterInstance;
  task: TaskKind;
  train: EncodedExample[];
  validation: EncodedExample[];
  settings: TrainingSettings;
  padTokenId: number;
  generate?: Generator;
  /** Recompute each transformer block in the backward pass (the run's resolved `gradientCheckpointing`). */
  checkpointing?: boolean;
}

/**
 * The trainable variables each transformer block reads, from the module names their keys start with; variables
 * of no one module (shared vectors such as TinyLoRA's tied v) count for every block. Also the variables of the
 * modules outside every block that are output heads (`lm_head`), for a loss that runs the head chunk by chunk.
 */
export function variablesByBlock(
  model: LoadedModel,
  params: TrainableParam[],
): { block: (layerIndex: number) => tf.Variable[]; head: tf.Variable[] } {
  const modules = model.spec.modules
    .filter((m) => m.adaptable)
    .map((m) => m.name)
    .sort((a, b) => b.length - a.length);
  const layerOf = new Map(model.spec.modules.map((m) => [m.name, m.layerIndex]));
  const heads = new Set(model.spec.modules.filter((m) => m.isOutputHead).map((m) => m.name));
  const perBlock = new Map<number, tf.Variable[]>();
  const shared: tf.Variable[] = [];
  const head: tf.Variable[] = [];
  for (const p of params) {
    const module = modules.find((m) => p.name.startsWith(`${m}.`));
    if (module === undefined) {
      shared.push(p.variable);
      head.push(p.variable);
      continue;
    }
    if (heads.has(module)) head.push(p.variable);
    const layer = layerOf.get(module);
    if (layer === undefined) continue;
    let list = perBlock.get(layer);
    if (!list) {
      list = [];
      perBlock.set(layer, list);
    }
    list.push(p.variable);
  }
  return { block: (i) => [...(perBlock.get(i) ?? []), ...shared], head };
}

/** Optimizer steps a run takes: `maxSteps`, or `epochs` passes of ⌈examples / (batch · accumulation)⌉ steps. */
export function totalStepsFor(settings: TrainingSettings, trainExamples: number): number {
  if (settings.maxSteps) return settings.maxSteps;
  const microPerEpoch = Math.ceil(trainExamples / settings.batchSize);
  return Math.max(1, Math.ceil((settings.epochs * microPerEpoch) / settings.gradAccumSteps));
}

const LOWER_IS_BETTER = new Set(['loss', 'perplexity']);

/**
 * One run's training state: optimizer, data cursor and counters. `step()` does one optimizer step
 * (gradient accumulation, clipping, non-finite guard); `evaluate()` scores the validation data.
 */
export class Trainer {
  readonly params: TrainableParam[];
  readonly optimizer: AdamW;
  readonly cursor: DataCursor;
  readonly totalSteps: number;
  state: TrainerState;
  private readonly variables: ReturnType<typeof variablesByBlock>;

  constructor(readonly setup: TrainerSetup) {
    const s = setup.settings;
    this.params = setup.instance.trainable();
    this.variables = variablesByBlock(setup.model, this.params);
    if (this.params.length === 0)
      throw new Error(`adapter "${setup.instance.name}" has no trainable parameters`);
    this.optimizer = new AdamW(this.params, {
      beta1: s.beta1,
      beta2: s.beta2,
      eps: s.eps,
      groups: {
        adapter: { lr: s.learningRate, weightDecay: s.weightDecay },
        scaling: { lr: s.scalingLearningRate ?? s.learningRate, weightDecay: s.scalingWeightDecay },
      },
    });
    this.cursor = new DataCursor(setup.train.length, s.batchSize, s.seed, s.shuffle);
    this.totalSteps = totalStepsFor(s, setup.train.length);
    this.state = initialTrainerState();
  }

  get warmupSteps(): number {
    const s = this.setup.settings;
    return s.warmupSteps > 0 ? s.warmupSteps : Math.ceil(s.warmupRatio * this.totalSteps);
  }

  /** The schedule factor for the next step. */
  lrFactor(): number {
    return lrFactor(
      { kind: this.setup.settings.schedule, warmupSteps: this.warmupSteps, totalSteps: this.totalSteps },
      this.state.step,
    );
  }

  restore(state: TrainerState): void {
    this.state = { ...state, position: { ...state.position } };
    this.cursor.position = { ...state.position };
  }

  /** Fractional epochs done. */
  epochProgress(): number {
    const p = this.cursor.position;
    return p.epoch + p.offset / this.setup.train.length;
  }

  /** Summed loss of one micro-batch (a scalar tensor, left unread) and its gradients (summed, not averaged). */
  private microBatch(
    indices: number[],
    microIndex: number,
  ): { lossSum: tf.Scalar; grads: tf.NamedTensorMap; targets: number; tokens: number } {
    const { model, task, train, padTokenId, settings } = this.setup;
    const padded = padBatch(
      indices.map((i) => train[i]),
      padTokenId,
    );
    const tensors = batchTensors(padded);
    const ctx = trainingContext(settings.seed, microIndex);
    if (this.setup.checkpointing) ctx.checkpoint = { params: this.variables.block };
    try {
      const { value, grads } = tf.variableGrads(
        () =>
          task === 'seq-cls'
            ? classificationLossSum(model.forward(tensors.batch, ctx) as tf.Tensor2D, tensors.labels!)
            : causalLmLossOfModel(model, tensors.batch, tensors.lossMask, ctx, this.variables.head),
        this.params.map((p) => p.variable),
      );
      return { lossSum: value, grads, targets: padded.targetCount, tokens: padded.tokenCount };
    } finally {
      disposeBatch(tensors);
    }
  }

  /**
   * One optimizer step over `gradAccumSteps` micro-batches. The loss and the gradient norm are read back once,
   * together and asynchronously: a GPU backend cannot read synchronously in Node, and each read stalls it.
   */
  async step(): Promise<StepResult> {
    const { settings } = this.setup;
    const accumulated = new Map<string, tf.Tensor>();
    const lossSums: tf.Scalar[] = [];
    let targets = 0;
    let tokens = 0;
    for (let k = 0; k < settings.gradAccumSteps; k++) {
      const { indices } = this.cursor.next();
      const micro = this.microBatch(indices, this.state.step * settings.gradAccumSteps + k);
      lossSums.push(micro.lossSum);
      targets += micro.targets;
      tokens += micro.tokens;
      for (const p of this.params) {
        const g = micro.grads[p.variable.name];
        if (!g) continue;
        const prev = accumulated.get(p.name);
        if (prev) {
          accumulated.set(p.name, tf.add(prev, g));
          prev.dispose();
          g.dispose();
        } else {
          accumulated.set(p.name, g);
        }
      }
    }
    const lrNow = this.optimizer.lr('adapter', this.lrFactor());
    const count = Math.max(1, targets);
    // the summed gradients are divided by the target count and clipped inside the update (gradScale), not as
    // tensor ops of their own
    const grads = Object.fromEntries(accumulated);
    const scalars = tf.tidy(() => tf.stack([tf.addN(lossSums), gradSquaredSum(Object.values(grads))]));
    tf.dispose(lossSums);
    const [lossSum, squaredSum] = await scalars.data();
    scalars.dispose();
    const loss = lossSum / count;
    const gradNorm = Math.sqrt(squaredSum) / count;
    const skipped = !Number.isFinite(loss) || !Number.isFinite(gradNorm);
    if (!skipped) {
      const clip = clipFactor(gradNorm, settings.maxGradNorm);
      this.optimizer.step(grads, this.lrFactor(), clip / count);
      this.state.nonFiniteInARow = 0;
    } else {
      this.state.nonFiniteInARow++;
    }
    tf.dispose(Object.values(grads));
    this.state.step++;
    this.state.tokensSeen += tokens;
    this.state.position = { ...this.cursor.position };
    return { step: this.state.step, epoch: this.epochProgress(), loss, lr: lrNow, gradNorm, tokens, skipped };
  }

  /** Validation metrics of the current adapter. */
  evaluate(examples: EncodedExample[] = this.setup.validation): Promise<Record<string, number>> {
    const { model, task, padTokenId, settings, generate } = this.setup;
    return evaluateExamples(model, task, examples, {
      batchSize: settings.evalBatchSize ?? settings.batchSize,
      padTokenId,
      generate,
      exactMatchExamples: settings.exactMatchExamples,
      maxNewTokens: settings.maxNewTokens,
    });
  }

  /** Updates early-stopping state from an evaluation; true when training should stop. */
  observeEval(metrics: Record<string, number>): boolean {
    const s = this.setup.settings;
    const value = metrics[s.earlyStoppingMetric];
    if (value === undefined || !Number.isFinite(value)) return false;
    const sign = LOWER_IS_BETTER.has(s.earlyStoppingMetric) ? -1 : 1;
    const best = this.state.best;
    if (best === null || sign * (value - best) > s.earlyStoppingMinDelta) {
      this.state.best = value;
      this.state.evalsWithoutImprovement = 0;
      return false;
    }
    this.state.evalsWithoutImprovement++;
    return s.earlyStoppingPatience > 0 && this.state.evalsWithoutImprovement >= s.earlyStoppingPatience;
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
