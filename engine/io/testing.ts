import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { nodeWriteFs, type WriteFs } from './fs.ts';

function enospc(syscall: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOSPC: no space left on device, ${syscall}`), {
    code: 'ENOSPC',
    errno: -28,
    syscall,
    path,
  });
}

/**
 * A disk with `free` bytes left, for tests: writes through the engine's `WriteFs` use up the space, a write
 * that does not fit writes what fits and fails with ENOSPC (as a real disk does), and removing, truncating or
 * overwriting a file opened through it gives its bytes back. `free` may be changed at any time (the disk fills up).
 */
export class TestDisk implements WriteFs {
  /** Bytes of each file written through this disk (what removing it frees). */
  private readonly sizes = new Map<string, number>();

  constructor(public free: number) {}

  private grow(path: string, by: number): void {
    this.sizes.set(path, (this.sizes.get(path) ?? 0) + by);
    this.free -= by;
  }

  private shrink(path: string, to: number): void {
    const was = this.sizes.get(path) ?? 0;
    if (to < was) {
      this.free += was - to;
      this.sizes.set(path, to);
    }
  }

  private forget(path: string): void {
    for (const [p, size] of this.sizes) {
      if (p === path || p.startsWith(`${path}/`)) {
        this.free += size;
        this.sizes.delete(p);
      }
    }
  }

  async open(path: string, flags: 'w' | 'wx' | 'a'): Promise<FileHandle> {
    if (!this.sizes.has(path)) {
      const existing = await fs.stat(path).then(
        (st) => st.size,
        () => 0,
      );
      this.sizes.set(path, existing);
    }
    const handle = await nodeWriteFs.open(path, flags);
    if (flags !== 'a') this.shrink(path, 0);
    const disk = this;
    /** Writes what fits of `bytes`, then fails if not everything did. */
    const write = async (bytes: Uint8Array) => {
      const fits = Math.max(0, Math.min(bytes.byteLength, disk.free));
      if (fits > 0) {
        await handle.write(bytes, 0, fits);
        disk.grow(path, fits);
      }
      if (fits < bytes.byteLength) throw enospc('write', path);
      return { bytesWritten: fits, buffer: bytes };
    };
    return new Proxy(handle, {
      get(target, prop) {
        if (prop === 'write')
          return (buffer: Uint8Array, offset = 0, length = buffer.byteLength - offset) =>
            write(buffer.subarray(offset, offset + length));
        if (prop === 'writeFile')
          return async (data: string | Uint8Array) => {
            await write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
          };
        if (prop === 'truncate')
          return async (length = 0) => {
            await target.truncate(length);
            disk.shrink(path, length);
          };
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }

  async rename(from: string, to: string): Promise<void> {
    await nodeWriteFs.rename(from, to);
    this.forget(to);
    for (const [p, size] of [...this.sizes]) {
      if (p === from || p.startsWith(`${from}/`)) {
        this.sizes.delete(p);
        this.sizes.set(to + p.slice(from.length), size);
      }
    }
  }

  async rm(path: string, options?: { recursive?: boolean; force?: boolean }): Promise<void> {
    await nodeWriteFs.rm(path, options);
    this.forget(path);
  }

  mkdir(path: string): Promise<void> {
    return nodeWriteFs.mkdir(path);
  }

  async copyFile(from: string, to: string): Promise<void> {
    const { size } = await fs.stat(from);
    if (size > this.free) throw enospc('copyfile', to);
    await nodeWriteFs.copyFile(from, to);
    this.shrink(to, 0);
    this.grow(to, size);
  }

  async freeBytes(): Promise<number> {
    return Math.max(0, this.free);
  }
}
