import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** A sibling temp path: same directory, so the final rename is atomic on one filesystem. */
export function tempSibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Writes a file through a temp file and a rename, so readers never see half a file and a crash leaves the
 * old content in place. `write` fills the open temp file; it is synced before the rename.
 */
export async function writeFileAtomicWith(
  path: string,
  write: (handle: FileHandle) => Promise<void>,
): Promise<void> {
  await fs.mkdir(dirname(path), { recursive: true });
  const tmp = tempSibling(path);
  try {
    const handle = await fs.open(tmp, 'w');
    try {
      await write(handle);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, path);
  } catch (error) {
    await fs.rm(tmp, { force: true });
    throw error;
  }
}

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await writeFileAtomicWith(path, async (handle) => {
    await handle.writeFile(data);
  });
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Builds a directory in a temp sibling and renames it into place; an existing target is replaced only after
 * the new one is complete.
 */
export async function writeDirAtomic(path: string, build: (tmpDir: string) => Promise<void>): Promise<void> {
  await fs.mkdir(dirname(path), { recursive: true });
  const tmp = tempSibling(path);
  await fs.mkdir(tmp, { recursive: true });
  try {
    await build(tmp);
    const old = `${tmp}.old`;
    let hadOld = false;
    try {
      await fs.rename(path, old);
      hadOld = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    await fs.rename(tmp, path);
    if (hadOld) await fs.rm(old, { recursive: true, force: true });
  } catch (error) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw error;
  }
}

/** Appends one line; JSONL logs are append-only so a crash loses at most the last partial line. */
export async function appendLine(path: string, line: string): Promise<void> {
  await fs.mkdir(dirname(path), { recursive: true });
  await fs.appendFile(path, line.endsWith('\n') ? line : `${line}\n`);
}
