import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { formatBytes } from './bytes.ts';
import { writeFs } from './fs.ts';

/** A write failed for want of disk space; the message names the file and the space it needed. */
export class DiskFullError extends Error {
  constructor(
    readonly file: string,
    /** Bytes the write needed, when known (creating a folder needs a little metadata space). */
    readonly needed: number | null,
    readonly free: number | null,
  ) {
    const need = needed === null ? '' : `: writing it needs ${formatBytes(needed)}`;
    const left = free === null ? '' : `${need ? ',' : ':'} ${formatBytes(free)} free`;
    super(`${file}: no space left on device${need}${left}; free some space and try again`);
    this.name = 'DiskFullError';
  }
}

/** `error` as a DiskFullError naming `file` when the disk was full, else `error` itself. */
export async function diskFull(error: unknown, file: string, needed: number | null): Promise<unknown> {
  if (error instanceof DiskFullError || (error as NodeJS.ErrnoException)?.code !== 'ENOSPC') return error;
  return new DiskFullError(file, needed, await writeFs().freeBytes(dirname(file)));
}

/** A sibling temp path: same directory, so the final rename is atomic on one filesystem. */
export function tempSibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Writes a file through a temp file and a rename, so readers never see half a file and a crash leaves the
 * old content in place. `write` fills the open temp file; it is synced before the rename. `size` (the bytes
 * `write` writes) is what a full disk's error reports as needed.
 */
export async function writeFileAtomicWith(
  path: string,
  size: number,
  write: (handle: FileHandle) => Promise<void>,
): Promise<void> {
  const io = writeFs();
  const tmp = tempSibling(path);
  try {
    await io.mkdir(dirname(path));
    const handle = await io.open(tmp, 'w');
    try {
      await write(handle);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await io.rename(tmp, path);
  } catch (error) {
    await io.rm(tmp, { force: true });
    throw await diskFull(error, path, size);
  }
}

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  await writeFileAtomicWith(path, bytes.byteLength, async (handle) => {
    await handle.writeFile(bytes);
  });
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Builds a directory in a temp sibling and renames it into place; an existing target is replaced only after
 * the new one is complete. A full disk is reported for the file's final path, not its temp one.
 */
export async function writeDirAtomic(path: string, build: (tmpDir: string) => Promise<void>): Promise<void> {
  const io = writeFs();
  const tmp = tempSibling(path);
  try {
    await io.mkdir(tmp);
    await build(tmp);
    const old = `${tmp}.old`;
    let hadOld = false;
    try {
      await io.rename(path, old);
      hadOld = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    await io.rename(tmp, path);
    if (hadOld) await io.rm(old, { recursive: true, force: true });
  } catch (error) {
    await io.rm(tmp, { recursive: true, force: true });
    if (error instanceof DiskFullError && error.file.startsWith(tmp)) {
      throw new DiskFullError(join(path, relative(tmp, error.file)), error.needed, error.free);
    }
    throw await diskFull(error, path, null);
  }
}

/** Copies a file (into a folder being built); a full disk is reported naming `to` and the source's size. */
export async function copyFileTo(from: string, to: string): Promise<void> {
  try {
    await writeFs().copyFile(from, to);
  } catch (error) {
    const size = await fs.stat(from).then(
      (s) => s.size,
      () => 0,
    );
    throw await diskFull(error, to, size);
  }
}
