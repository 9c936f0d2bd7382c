import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/**
 * The file-system calls through which the engine writes (atomic files and folders, logs, copies, locks).
 * Tests put a shim in their place (`setWriteFs`) to fail writes the way a full disk does.
 */
export interface WriteFs {
  open(path: string, flags: 'w' | 'wx' | 'a'): Promise<FileHandle>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, options?: { recursive?: boolean; force?: boolean }): Promise<void>;
  mkdir(path: string): Promise<void>;
  copyFile(from: string, to: string): Promise<void>;
  /** Bytes available to this user on the file system holding `path`, when it can tell. */
  freeBytes(path: string): Promise<number | null>;
}

export const nodeWriteFs: WriteFs = {
  open: (path, flags) => fs.open(path, flags),
  rename: (from, to) => fs.rename(from, to),
  rm: (path, options) => fs.rm(path, options),
  mkdir: async (path) => {
    await fs.mkdir(path, { recursive: true });
  },
  copyFile: (from, to) => fs.copyFile(from, to),
  freeBytes: async (path) => {
    try {
      const s = await fs.statfs(path);
      return s.bavail * s.bsize;
    } catch {
      return null;
    }
  },
};

let current: WriteFs = nodeWriteFs;

/** The file system writes go through. */
export function writeFs(): WriteFs {
  return current;
}

/** Routes writes through `shim` until the returned function restores the previous one (tests only). */
export function setWriteFs(shim: WriteFs): () => void {
  const previous = current;
  current = shim;
  return () => {
    current = previous;
  };
}
