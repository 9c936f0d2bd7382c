import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { AdapterInstance } from '../adapters/types.ts';
import type { LoadedModel } from '../models/types.ts';
import { collectMetrics, type MetricsCache, newMetricsCache } from './metrics.ts';
import { analyzeAdapter } from './snapshot.ts';
import { analysisDir, appendTimeSeries, TIMESERIES_FILE, writeSnapshot } from './store.ts';
import { ANALYSIS_VERSION, type Histogram, type TimeSeriesRow } from './types.ts';

export interface RecorderOptions {
  /** The run folder (`runs/<id>`); files go to `<runDir>/analysis/`. */
  runDir: string;
  model: LoadedModel;
  /** Record every N optimizer steps (default 10). */
  every?: number;
  /** Also write a full snapshot (histograms, dense spectra) at checkpoints and at the end (default true). */
  snapshots?: boolean;
}

export type RecordTrigger = TimeSeriesRow['trigger'];

/**
 * Factor rank up to which each record computes the exact spectrum of ΔW (O((in + out)·k² + k³) per
 * module); above it (VeRA's r = 256) a record keeps the Gram-matrix norms and snapshots carry the spectrum.
 */
export const CHEAP_EXACT_RANK = 64;

/**
 * Records the cheap scalar metrics (norms, scaling factors, low-rank spectra) of a training run into
 * `analysis/timeseries.jsonl`, giving the layer × step heatmaps. The trainer calls `record` when
 * `shouldRecord(step)` holds and at checkpoints; the time spent is tracked in `elapsedMs` (and in each row)
 * so the overhead is measurable against the training time.
 */
export class AnalysisRecorder {
  readonly runDir: string;
  readonly every: number;
  private readonly model: LoadedModel;
  private readonly snapshots: boolean;
  private readonly cache: MetricsCache = newMetricsCache();
  private readonly baseHistograms = new Map<string, Histogram>();
  /** Total wall time spent recording, in ms. */
  elapsedMs = 0;
  records = 0;
  /** The last row written. */
  lastRow: TimeSeriesRow | null = null;

  constructor(options: RecorderOptions) {
    const every = options.every ?? 10;
    if (!Number.isInteger(every) || every < 1)
      throw new Error(`AnalysisRecorder: every must be a positive integer, got ${every}`);
    this.runDir = options.runDir;
    this.model = options.model;
    this.every = every;
    this.snapshots = options.snapshots ?? true;
  }

  /** True on the steps the recorder samples (multiples of `every`, and step 0 as the baseline). */
  shouldRecord(step: number): boolean {
    return step % this.every === 0;
  }

  /**
   * Appends one time-series row for `step`; at a checkpoint (or the final step) also writes
   * `snapshot-step-<step>.json`. Without `trigger`, a step whose checkpoint folder (`checkpoints/step-<N>`,
   * the run layout) exists counts as a checkpoint. Returns the path of the file written last.
   */
  async record(step: number, instance: AdapterInstance, trigger?: RecordTrigger): Promise<string> {
    const started = performance.now();
    const cause = trigger ?? ((await isCheckpoint(this.runDir, step)) ? 'checkpoint' : 'interval');
    const { modules, shared } = await collectMetrics(instance, this.model, {
      cache: this.cache,
      maxExactRank: CHEAP_EXACT_RANK,
      gramSpectra: true,
    });
    const row: TimeSeriesRow = {
      version: ANALYSIS_VERSION,
      kind: 'timeseries',
      step,
      trigger: cause,
      time: new Date().toISOString(),
      elapsedMs: 0,
      modules,
      shared,
    };
    row.elapsedMs = performance.now() - started;
    await appendTimeSeries(this.runDir, row);
    this.lastRow = row;
    let written = join(analysisDir(this.runDir), TIMESERIES_FILE);
    if (this.snapshots && cause !== 'interval') {
      const snapshot = await analyzeAdapter(instance, this.model, {
        step,
        cache: this.cache,
        baseHistograms: this.baseHistograms,
      });
      written = await writeSnapshot(this.runDir, snapshot);
    }
    this.elapsedMs += performance.now() - started;
    this.records += 1;
    return written;
  }
}

/**
 * The recorder a training run takes (`startRun(dir, { recorder: runRecorder })`): a row every `analysisEvery`
 * steps (0: at checkpoints only), a snapshot at checkpoints and at the end.
 */
export function runRecorder(run: {
  runDir: string;
  model: LoadedModel;
  analysisEvery: number;
}): AnalysisRecorder {
  return new AnalysisRecorder({
    runDir: run.runDir,
    model: run.model,
    every: run.analysisEvery > 0 ? run.analysisEvery : 1,
  });
}

async function isCheckpoint(runDir: string, step: number): Promise<boolean> {
  try {
    return (await fs.stat(join(runDir, 'checkpoints', `step-${step}`))).isDirectory();
  } catch {
    return false;
  }
}
