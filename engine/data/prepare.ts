import type { TaskKind } from '../models/types.ts';
import { DataError } from './errors.ts';
import { type DataFormat, type RawExample, readExamples } from './formats.ts';
import { collectLabelNames } from './labels.ts';
import { splitValidation } from './split.ts';
import { type EncodedExample, encodeExamples, type LossOn, type TextTokenizer } from './tokenize.ts';

export interface DataSources {
  task: TaskKind;
  train: string;
  /** A separate validation file; otherwise `valFraction` of `train` is held out (or none when 0/absent). */
  validation?: string;
  valFraction?: number;
  format?: DataFormat;
  /** Label names in id order (recorded in the project); collected from the training file when absent. */
  labels?: string[];
  seed: number;
}

export interface RawData {
  train: RawExample[];
  validation: RawExample[];
  labels?: string[];
}

/** Reads and splits the data files without tokenising (enough for `init` to record labels). */
export async function readData(sources: DataSources): Promise<RawData> {
  const all = await readExamples(sources.train, sources.task, sources.format);
  let train = all;
  let validation: RawExample[] = [];
  if (sources.validation) {
    validation = await readExamples(sources.validation, sources.task, sources.format);
  } else if (sources.valFraction && sources.valFraction > 0) {
    ({ train, validation } = splitValidation(all, sources.valFraction, sources.seed, sources.train));
  }
  if (sources.task !== 'seq-cls') return { train, validation };
  const labels = sources.labels ?? collectLabelNames(all);
  if (labels.length < 2) {
    throw new DataError(
      `classification needs at least 2 labels, found ${JSON.stringify(labels)}`,
      sources.train,
    );
  }
  return { train, validation, labels };
}

export interface PreparedData {
  train: EncodedExample[];
  validation: EncodedExample[];
  labels?: string[];
  stats: { trainExamples: number; validationExamples: number; truncated: number; trainTokens: number };
}

export async function prepareData(
  sources: DataSources,
  tokenizer: TextTokenizer,
  options: { maxSeqLen: number; lossOn: LossOn },
): Promise<PreparedData> {
  const raw = await readData(sources);
  const encode = (examples: RawExample[]) =>
    encodeExamples(examples, tokenizer, {
      maxSeqLen: options.maxSeqLen,
      lossOn: options.lossOn,
      labels: raw.labels,
    });
  const train = encode(raw.train);
  const validation = encode(raw.validation);
  if (sources.task === 'causal-lm' && !train.some((e) => e.lossMask.some((m) => m > 0))) {
    throw new DataError(
      `no example has a token to train on after truncation to ${options.maxSeqLen} tokens`,
      sources.train,
    );
  }
  return {
    train,
    validation,
    labels: raw.labels,
    stats: {
      trainExamples: train.length,
      validationExamples: validation.length,
      truncated: train.filter((e) => e.truncated).length,
      trainTokens: train.reduce((s, e) => s + e.inputIds.length, 0),
    },
  };
}
