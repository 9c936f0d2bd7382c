import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { diskFull } from '../io/atomic.ts';
import { writeFs } from '../io/fs.ts';

const LOCK_FILE = 'run.lock';

/**
 * Claims a run folder for this process: a second trainer on the same run would interleave checkpoints.
 * A lock left by a killed process (its pid no longer alive) is taken over. Returns the release function.
 */
export async function lockRun(runDir: string): Promise<() => Promise<void>> {
  const path = join(runDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeLock(path);
      return () => fs.rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number((await fs.readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
        throw new Error(`${runDir}: the run is being trained by process ${pid}`);
      }
      await fs.rm(path, { force: true });
    }
  }
  throw new Error(`${runDir}: cannot lock the run folder`);
}

/** Creates the lock file holding this process's id; fails with EEXIST when it exists. */
async function writeLock(path: string): Promise<void> {
  const text = String(process.pid);
  let handle: FileHandle;
  try {
    handle = await writeFs().open(path, 'wx');
  } catch (error) {
    throw await diskFull(error, path, text.length);
  }
  try {
    await handle.writeFile(text);
  } catch (error) {
    await handle.close();
    await fs.rm(path, { force: true });
    throw await diskFull(error, path, text.length);
  }
  await handle.close();
}

/** Whether a process with this id exists (one owned by another user counts). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
