import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { StudioError } from '../common/errors.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { appendJsonLine, readJsonLines } from '../io/jsonl.ts';
import {
  ANALYSIS_VERSION,
  type AnalysisData,
  type Comparison,
  type EigenResult,
  type Heatmap,
  type HeatmapMetric,
  type ModuleMetrics,
  type Series,
  type Snapshot,
  type TimeSeriesRow,
} from './types.ts';

/**
 * Layout of `runs/<id>/analysis/` (every file carries `version`, readable without the model):
 * `timeseries.jsonl` (one `TimeSeriesRow` per record), `snapshot-step-<N>.json` (`Snapshot`),
 * `compare-<other run id>.json` (`Comparison`), `eigen/<sha256>.json` (`EigenResult`).
 */
export function analysisDir(runDir: string): string {
  return join(runDir, 'analysis');
}

export const TIMESERIES_FILE = 'timeseries.jsonl';

export function snapshotFile(step: number | null): string {
  return step === null ? 'snapshot-final.json' : `snapshot-step-${step}.json`;
}

export function compareFile(otherId: string): string {
  return `compare-${otherId.replace(/[^A-Za-z0-9._-]/g, '_')}.json`;
}

export async function appendTimeSeries(runDir: string, row: TimeSeriesRow): Promise<void> {
  await appendJsonLine(join(analysisDir(runDir), TIMESERIES_FILE), row);
}

export async function writeSnapshot(runDir: string, snapshot: Snapshot): Promise<string> {
  const path = join(analysisDir(runDir), snapshotFile(snapshot.step));
  await writeJsonAtomic(path, snapshot);
  return path;
}

export async function writeComparison(
  runDir: string,
  otherId: string,
  comparison: Comparison,
): Promise<string> {
  const path = join(analysisDir(runDir), compareFile(otherId));
  await writeJsonAtomic(path, comparison);
  return path;
}

export function eigenDir(runDir: string): string {
  return join(analysisDir(runDir), 'eigen');
}

/** A bad analysis file: the message names the file (and line) and the problem. */
export class AnalysisFileError extends StudioError {
  constructor(message: string) {
    super('invalid_input', message);
    this.name = 'AnalysisFileError';
  }
}

function checkRecord<K extends string>(value: unknown, kind: K, where: string): void {
  if (!value || typeof value !== 'object') throw new AnalysisFileError(`${where}: not a JSON object`);
  const v = value as { version?: unknown; kind?: unknown };
  if (v.version !== ANALYSIS_VERSION) {
    throw new AnalysisFileError(
      `${where}: analysis format version ${String(v.version)}, this studio reads ${ANALYSIS_VERSION}`,
    );
  }
  if (v.kind !== kind)
    throw new AnalysisFileError(`${where}: expected a "${kind}" record, got "${String(v.kind)}"`);
}

export async function readJsonFile<T>(path: string, kind: string): Promise<T> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (error) {
    throw new AnalysisFileError(
      `${path}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new AnalysisFileError(`${path}: invalid JSON (${(error as Error).message})`);
  }
  checkRecord(value, kind, path);
  return value as T;
}

/**
 * Reads `timeseries.jsonl`. A torn last line (a crash mid-append) is skipped; a bad line elsewhere is an
 * error naming the line.
 */
export async function readTimeSeries(runDir: string): Promise<TimeSeriesRow[]> {
  const path = join(analysisDir(runDir), TIMESERIES_FILE);
  const lines = await readJsonLines(
    path,
    (line, reason) => new AnalysisFileError(`${path}:${line}: invalid JSON (${reason})`),
  );
  return lines.map(({ value, line }) => {
    checkRecord(value, 'timeseries', `${path}:${line}`);
    return value as TimeSeriesRow;
  });
}

const metricOf: Record<HeatmapMetric, (m: ModuleMetrics) => number | null> = {
  deltaFrobenius: (m) => m.deltaFrobenius,
  deltaSpectral: (m) => m.deltaSpectral,
  relativeDelta: (m) => m.relativeDelta,
  trainableNorm: (m) => m.trainableNorm,
  scale: (m) => m.scaling.scale,
  // √Σ‖v‖² over the module's scaling vectors (DoRA magnitude, VeRA λ_b/λ_d, TinyLoRA's tied v).
  scalingVectors: (m) =>
    m.scaling.vectors.length ? Math.sqrt(m.scaling.vectors.reduce((s, v) => s + v.l2 * v.l2, 0)) : null,
  effectiveRank: (m) => (m.spectrum.source === 'none' ? null : m.spectrum.effectiveRank),
  stableRank: (m) => (m.spectrum.source === 'none' ? null : m.spectrum.stableRank),
};

export const HEATMAP_METRICS = Object.keys(metricOf) as HeatmapMetric[];

/** One row per step (the last record wins when a step was recorded twice, e.g. interval and checkpoint). */
function byStep(rows: TimeSeriesRow[]): TimeSeriesRow[] {
  const last = new Map<number, TimeSeriesRow>();
  for (const r of rows) last.set(r.step, r);
  return [...last.values()].sort((a, b) => a.step - b.step);
}

/**
 * Layer × step matrices per metric and module role (q_proj, v_proj, …): rows are block indices (or module
 * names outside blocks), columns are recorded steps. Metrics that are null everywhere for a role are left out.
 */
export function buildHeatmaps(rows: TimeSeriesRow[], metrics: HeatmapMetric[] = HEATMAP_METRICS): Heatmap[] {
  const ordered = byStep(rows);
  const steps = ordered.map((r) => r.step);
  const roles = new Map<string, Map<string, { label: string; index: number | null }>>();
  for (const r of ordered) {
    for (const m of r.modules) {
      if (!roles.has(m.role)) roles.set(m.role, new Map());
      roles.get(m.role)!.set(m.module, {
        label: m.layerIndex === null ? m.module : String(m.layerIndex),
        index: m.layerIndex,
      });
    }
  }
  const out: Heatmap[] = [];
  for (const [role, modules] of roles) {
    const names = [...modules.keys()].sort((a, b) => {
      const ia = modules.get(a)!.index ?? Number.POSITIVE_INFINITY;
      const ib = modules.get(b)!.index ?? Number.POSITIVE_INFINITY;
      return ia - ib || a.localeCompare(b);
    });
    for (const metric of metrics) {
      const values = names.map((name) =>
        ordered.map((r) => {
          const m = r.modules.find((x) => x.module === name);
          return m ? metricOf[metric](m) : null;
        }),
      );
      if (values.every((row) => row.every((v) => v === null))) continue;
      out.push({
        metric,
        role,
        rows: names.map((n) => modules.get(n)!.label),
        modules: names,
        steps,
        values,
      });
    }
  }
  return out;
}

/** Per metric, the mean and the max over modules at each step. */
export function buildSeries(rows: TimeSeriesRow[], metrics: HeatmapMetric[] = HEATMAP_METRICS): Series[] {
  const ordered = byStep(rows);
  const out: Series[] = [];
  for (const metric of metrics) {
    const mean: number[] = [];
    const max: number[] = [];
    const steps: number[] = [];
    for (const r of ordered) {
      const vals = r.modules.map(metricOf[metric]).filter((v): v is number => v !== null);
      if (vals.length === 0) continue;
      steps.push(r.step);
      mean.push(vals.reduce((a, b) => a + b, 0) / vals.length);
      max.push(Math.max(...vals));
    }
    if (steps.length === 0) continue;
    out.push(
      { metric, aggregate: 'mean', steps, values: mean },
      { metric, aggregate: 'max', steps: [...steps], values: max },
    );
  }
  return out;
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** Everything under `<runDir>/analysis/`, typed for charts. Needs no model; a missing folder gives empty data. */
export async function readAnalysis(runDir: string): Promise<AnalysisData> {
  const dir = analysisDir(runDir);
  const files = await listDir(dir);
  const timeseries = await readTimeSeries(runDir);
  const snapshots = files
    .map((file) => {
      const m = /^snapshot-(?:step-(\d+)|final)\.json$/.exec(file);
      return m ? { step: m[1] === undefined ? null : Number(m[1]), file: join(dir, file) } : null;
    })
    .filter((s): s is { step: number | null; file: string } => s !== null)
    .sort((a, b) => (a.step ?? Number.POSITIVE_INFINITY) - (b.step ?? Number.POSITIVE_INFINITY));
  const latest = snapshots.at(-1);
  const comparisons = await Promise.all(
    files
      .filter((f) => /^compare-.*\.json$/.test(f))
      .sort()
      .map((f) => readJsonFile<Comparison>(join(dir, f), 'compare')),
  );
  const eigenFiles = (await listDir(eigenDir(runDir))).filter((f) => f.endsWith('.json')).sort();
  const eigen = await Promise.all(
    eigenFiles.map((f) => readJsonFile<EigenResult>(join(eigenDir(runDir), f), 'eigen')),
  );
  return {
    runDir,
    timeseries,
    heatmaps: buildHeatmaps(timeseries),
    series: buildSeries(timeseries),
    snapshots,
    latestSnapshot: latest ? await readJsonFile<Snapshot>(latest.file, 'snapshot') : null,
    comparisons,
    eigen,
  };
}
