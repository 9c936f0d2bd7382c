import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { type RunRecord, readRunRecord, writeRunRecord } from '../project/store.ts';
import { CHECKPOINTS_DIR } from './checkpoint.ts';
import { isAlive, LOCK_FILE, lockPid } from './lock.ts';
import { RESERVE_FILE } from './space.ts';

/** `.<name>.<pid>.<8 hex>.tmp` (io/atomic's temp siblings), and `.old` for a folder being replaced. */
const TEMP = /^\.(.+)\.(\d+)\.[0-9a-f]{8}\.tmp(\.old)?$/;

/** Folders of a run where atomic writes leave temp siblings. */
const WRITTEN = ['.', CHECKPOINTS_DIR, 'analysis', 'exports'];

/**
 * Removes the temp files and folders that dead processes left half-written in `dir`. A replaced folder's
 * `.old` copy whose new version never arrived is put back instead.
 */
async function removeDeadTemps(dir: string): Promise<void> {
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    const m = TEMP.exec(name);
    if (!m || isAlive(Number(m[2]))) continue;
    const path = join(dir, name);
    const target = join(dir, m[1]);
    const targetExists = await fs.access(target).then(
      () => true,
      () => false,
    );
    if (m[3] && !targetExists) await fs.rename(path, target);
    else await fs.rm(path, { recursive: true, force: true });
  }
}

/**
 * Repairs what a killed trainer left in a run folder. When no live process holds the run's lock, a
 * run.json that still says `running` (or `pending`) becomes `interrupted`, which resumes from the last
 * checkpoint; the dead process's half-written temp files and checkpoint folders (`.step-N.<pid>.<rand>.tmp`),
 * its lock and its held-back space are removed. Returns the run record as it is now. Called when runs are
 * opened: listed by the app, resumed by the CLI.
 */
export async function recoverRun(runDir: string): Promise<RunRecord> {
  const record = await readRunRecord(runDir);
  const pid = await lockPid(runDir);
  if (pid !== null && isAlive(pid)) return record;
  for (const sub of WRITTEN) await removeDeadTemps(join(runDir, sub));
  await fs.rm(join(runDir, RESERVE_FILE), { force: true });
  if (pid !== null) await fs.rm(join(runDir, LOCK_FILE), { force: true });
  if (record.status !== 'running' && record.status !== 'pending') return record;
  const recovered: RunRecord = { ...record, status: 'interrupted', updatedAt: new Date().toISOString() };
  await writeRunRecord(runDir, recovered);
  return recovered;
}
