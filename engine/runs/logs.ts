import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { parseEventLog, type TrainEvent } from '../common/train-events.ts';
import { filterJsonLines } from '../io/jsonl.ts';
import { METRICS_FILE } from '../project/store.ts';

/** Events of a run's `metrics.jsonl`. */
export async function readRunEvents(runDir: string): Promise<TrainEvent[]> {
  const file = join(runDir, METRICS_FILE);
  return parseEventLog(await fs.readFile(file, 'utf8'), file);
}

/**
 * Drops the rows of a run's logs (`metrics.jsonl`, `analysis/*.jsonl`) past the checkpoint it resumes from:
 * the resumed run writes those steps again, so each step is logged once. Rows without a step stay.
 */
export async function truncateRunLogs(runDir: string, step: number): Promise<void> {
  const analysis = join(runDir, 'analysis');
  const names = await fs.readdir(analysis).catch(() => [] as string[]);
  const files = [
    join(runDir, METRICS_FILE),
    ...names.filter((n) => n.endsWith('.jsonl')).map((n) => join(analysis, n)),
  ];
  for (const file of files) {
    await filterJsonLines(
      file,
      (row) => {
        const at = (row as { step?: unknown }).step;
        return typeof at !== 'number' || at <= step;
      },
      (line, reason) => new Error(`${file}:${line}: malformed log line (${reason}); cannot resume past it`),
    );
  }
}
