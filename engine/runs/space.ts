import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.ts';
import { writeFs } from '../io/fs.ts';

/**
 * Space held back in a run folder while it trains: when the disk fills up mid-run, releasing it lets the run
 * still write `run.json` as failed, with the reason, and the error event.
 */
export const RESERVE_FILE = '.space-reserve';
const RESERVE_BYTES = 64 * 1024;

export async function reserveSpace(runDir: string): Promise<void> {
  // zeros written out (not a sparse file), so the blocks are really taken
  await writeFileAtomic(join(runDir, RESERVE_FILE), new Uint8Array(RESERVE_BYTES));
}

export async function releaseSpace(runDir: string): Promise<void> {
  await writeFs().rm(join(runDir, RESERVE_FILE), { force: true });
}
