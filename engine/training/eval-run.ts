import { resolve } from 'node:path';
import { prepareData } from '../data/prepare.ts';
import type { EncodedExample } from '../data/tokenize.ts';
import { projectOfRun, projectPath } from '../project/store.ts';
import { activateRunBackend, loadRunAdapter } from '../runs/index.ts';
import { evaluateExamples, greedyGenerator } from './evaluate.ts';

export interface EvalRunOptions {
  /** Evaluate on this file instead of the run's validation data. */
  data?: string;
  /** Limit of exact-match generations (default: the run's setting). */
  exactMatchExamples?: number;
  /** Backend preference (default: the run's); `current` keeps the active one. */
  backend?: string;
}

export interface EvalRunResult {
  runDir: string;
  checkpoint: string;
  step: number;
  data: string;
  examples: number;
  metrics: Record<string, number>;
}

/**
 * The run's validation examples, encoded as training saw them (or every example of `file` instead); an error
 * when there are none unless `allowNone`.
 */
export async function runExamples(
  loaded: Awaited<ReturnType<typeof loadRunAdapter>>,
  file?: string,
  options: { allowNone?: boolean } = {},
): Promise<EncodedExample[]> {
  const settings = loaded.runConfig;
  const training = settings.training;
  const projectDir = projectOfRun(loaded.runDir);
  const data = await prepareData(
    {
      task: settings.task,
      train: file ?? projectPath(projectDir, settings.data.train),
      validation: file
        ? undefined
        : settings.data.validation && projectPath(projectDir, settings.data.validation),
      valFraction: file ? 0 : settings.data.valFraction,
      format: settings.data.format,
      labels: loaded.record.labels ?? settings.data.labels,
      seed: training.seed,
    },
    loaded.tokenizer,
    { maxSeqLen: training.maxSeqLen, lossOn: training.lossOn },
  );
  const examples = file ? data.train : data.validation;
  if (examples.length === 0 && !options.allowNone) {
    throw new Error(
      'the run has no validation data (it was trained without a validation file or fraction); pass --data <file>',
    );
  }
  return examples;
}

/** Scores a run's adapter (its latest checkpoint, or the given one) on the validation data or another file. */
export async function evaluateRun(
  runOrCheckpointDir: string,
  options: EvalRunOptions = {},
): Promise<EvalRunResult> {
  await activateRunBackend(runOrCheckpointDir, options.backend);
  const loaded = await loadRunAdapter(runOrCheckpointDir);
  try {
    const settings = loaded.runConfig;
    const training = settings.training;
    const runDir = loaded.runDir;
    const projectDir = projectOfRun(runDir);
    const file = options.data ? resolve(options.data) : undefined;
    const examples = await runExamples(loaded, file);
    const metrics = await evaluateExamples(loaded.model, settings.task, examples, {
      batchSize: training.evalBatchSize ?? training.batchSize,
      padTokenId: loaded.tokenizer.padTokenId ?? loaded.tokenizer.eosTokenId ?? 0,
      generate: settings.task === 'causal-lm' ? greedyGenerator(loaded.model, loaded.tokenizer) : undefined,
      exactMatchExamples: options.exactMatchExamples ?? training.exactMatchExamples,
      maxNewTokens: training.maxNewTokens,
    });
    return {
      runDir,
      checkpoint: loaded.checkpoint,
      step: loaded.state.step,
      data:
        file ??
        (settings.data.validation
          ? projectPath(projectDir, settings.data.validation)
          : `${settings.data.train} (held-out ${settings.data.valFraction})`),
      examples: examples.length,
      metrics,
    };
  } finally {
    loaded.instance.dispose();
    loaded.model.dispose();
  }
}
