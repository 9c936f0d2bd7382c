import { promises as fs } from 'node:fs';
import { basename, join } from 'node:path';
import { copyFileTo, writeJsonAtomic } from '../io/atomic.ts';
import { METRICS_FILE, projectOfRun, projectPath, RUN_FILE, readRunRecord } from '../project/index.ts';
import {
  ADAPTER_FILE,
  CHECKPOINTS_DIR,
  locateCheckpoint,
  OPTIMIZER_FILE,
  STATE_FILE,
} from '../runs/index.ts';
import { openSafetensors } from '../safetensors/index.ts';
import { ExportError } from './errors.ts';

/**
 * A native checkpoint as a self-contained run folder: `run.json` (project paths made absolute, so the
 * folder can live anywhere), `metrics.jsonl`, and `checkpoints/step-N/` with the adapter state, the
 * optimizer state and `state.json` (step, data position, RNG state, method, config, seed) copied byte
 * for byte. `resumeRun` and `loadRunAdapter` accept the result. Writes into `outDir` (a temp folder).
 */
export async function writeNativeCheckpoint(runOrCheckpointDir: string, outDir: string): Promise<string[]> {
  const { runDir, checkpoint } = await locateCheckpoint(runOrCheckpointDir);
  const record = await readRunRecord(runDir);
  const project = projectOfRun(runDir);
  const step = basename(checkpoint);
  const target = join(outDir, CHECKPOINTS_DIR, step);
  await fs.mkdir(target, { recursive: true });
  const files: string[] = [];
  for (const name of [ADAPTER_FILE, OPTIMIZER_FILE]) {
    // Validate before copying: a damaged checkpoint must not be exported as a good one.
    const file = await openSafetensors(join(checkpoint, name)).catch((error: Error) => {
      throw new ExportError(error.message);
    });
    await file.close();
  }
  for (const name of [ADAPTER_FILE, OPTIMIZER_FILE, STATE_FILE]) {
    const from = join(checkpoint, name);
    try {
      await copyFileTo(from, join(target, name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        throw new ExportError(`${from}: missing from the checkpoint`);
      throw error;
    }
    files.push(join(target, name));
  }
  const config = {
    ...record.config,
    model: projectPath(project, record.config.model),
    data: {
      ...record.config.data,
      train: projectPath(project, record.config.data.train),
      ...(record.config.data.validation
        ? { validation: projectPath(project, record.config.data.validation) }
        : {}),
    },
  };
  await writeJsonAtomic(join(outDir, RUN_FILE), { ...record, config, lastCheckpoint: target });
  files.push(join(outDir, RUN_FILE));
  const metrics = join(runDir, METRICS_FILE);
  if (
    await fs
      .access(metrics)
      .then(() => true)
      .catch(() => false)
  ) {
    await copyFileTo(metrics, join(outDir, METRICS_FILE));
    files.push(join(outDir, METRICS_FILE));
  }
  return files;
}
