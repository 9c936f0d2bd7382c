import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { diskFull } from '../io/atomic.ts';
import { writeFs } from '../io/fs.ts';

export const LOCK_FILE = 'run.lock';

/** A second trainer was refused: the message names the live run and the process training it. */
export class RunLockError extends Error {
  constructor(
    where: string,
    readonly runDir: string,
    readonly pid: number,
  ) {
    super(
      `${where}: run ${basename(runDir)} is being trained by process ${pid}; wait for it to end, or pause or cancel it`,
    );
    this.name = 'RunLockError';
  }
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

/** The process id in a run's lock file, or null without one. */
export async function lockPid(runDir: string): Promise<number | null> {
  const text = await fs.readFile(join(runDir, LOCK_FILE), 'utf8').catch(() => null);
  if (text === null) return null;
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/** The live process training a run (holding its lock), or null. */
export async function lockHolder(runDir: string): Promise<number | null> {
  const pid = await lockPid(runDir);
  return pid !== null && isAlive(pid) ? pid : null;
}

/** A run beside `runDir` (in the same project's `runs/`) that a live process trains, if any. */
async function liveSibling(
  runsDir: string,
  except?: string,
): Promise<{ runDir: string; pid: number } | null> {
  const names = await fs.readdir(runsDir).catch(() => [] as string[]);
  for (const name of names) {
    const dir = join(runsDir, name);
    if (dir === except || name.startsWith('.')) continue;
    const pid = await lockHolder(dir);
    if (pid !== null) return { runDir: dir, pid };
  }
  return null;
}

/**
 * Refuses to start training in a project's `runs/` folder while another of its runs is being trained (by
 * this process or another: the CLI and the API follow the same rule).
 */
export async function checkProjectFree(runsDir: string): Promise<void> {
  const busy = await liveSibling(runsDir);
  if (busy) throw new RunLockError(dirname(runsDir), busy.runDir, busy.pid);
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

/**
 * The one lock rule of training, for the CLI, the API and the library alike: a run is trained by one process
 * at a time, and a project by one run at a time (two would compete for the machine and interleave nothing
 * useful). Claims `runDir/run.lock` for this process, taking over a lock whose process is gone, then checks
 * the project's other runs. Returns the release function.
 */
export async function lockRun(runDir: string): Promise<() => Promise<void>> {
  const path = join(runDir, LOCK_FILE);
  const release = () => fs.rm(path, { force: true });
  for (let attempt = 0; ; attempt++) {
    try {
      await writeLock(path);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
      const pid = await lockHolder(runDir);
      if (pid !== null) throw new RunLockError(runDir, runDir, pid);
      await release();
    }
  }
  // checked after claiming: of two trainers starting at once, at least one sees the other
  const busy = await liveSibling(dirname(runDir), runDir).catch(async (error) => {
    await release();
    throw error;
  });
  if (busy) {
    await release();
    throw new RunLockError(dirname(dirname(runDir)), busy.runDir, busy.pid);
  }
  return release;
}
