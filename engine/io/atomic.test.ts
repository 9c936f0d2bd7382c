import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { copyFileTo, DiskFullError, writeDirAtomic, writeFileAtomic } from './atomic.ts';
import { setWriteFs } from './fs.ts';
import { appendJsonLine } from './jsonl.ts';
import { TestDisk } from './testing.ts';

let restore: (() => void) | null = null;
afterEach(() => {
  restore?.();
  restore = null;
});

function disk(free: number): TestDisk {
  const d = new TestDisk(free);
  restore = setWriteFs(d);
  return d;
}

const tmp = () => fs.mkdtemp(join(tmpdir(), 'atomic-'));

describe('writes on a full disk', () => {
  it('a file: names the file and the space it needed, and leaves neither it nor its temp file', async () => {
    const dir = await tmp();
    const d = disk(10);
    const error = await writeFileAtomic(join(dir, 'run.json'), 'x'.repeat(100)).catch((e) => e);
    expect(error).toBeInstanceOf(DiskFullError);
    expect(error.message).toBe(
      `${join(dir, 'run.json')}: no space left on device: writing it needs 100 B, 10 B free; free some space and try again`,
    );
    expect(await fs.readdir(dir)).toEqual([]);
    expect(d.free).toBe(10);
  });

  it('a folder: names the final path of the file that did not fit, and removes the temp folder', async () => {
    const dir = await tmp();
    disk(2048);
    const out = join(dir, 'step-4');
    const error = await writeDirAtomic(out, async (t) => {
      await writeFileAtomic(join(t, 'small.json'), '{}');
      await writeFileAtomic(join(t, 'adapter.safetensors'), new Uint8Array(4096));
    }).catch((e) => e);
    expect(error.message).toMatch(
      new RegExp(
        `^${join(out, 'adapter.safetensors')}: no space left on device: writing it needs 4.0 KiB, 2.0 KiB free`,
      ),
    );
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('an appended log line: cut back off, so the log keeps no torn line', async () => {
    const dir = await tmp();
    const file = join(dir, 'metrics.jsonl');
    await fs.writeFile(file, '{"step":1}\n');
    disk(5);
    await expect(appendJsonLine(file, { step: 2, loss: 0.5 })).rejects.toThrow(
      `${file}: no space left on device: writing it needs 22 B, 5 B free`,
    );
    expect(await fs.readFile(file, 'utf8')).toBe('{"step":1}\n');
  });

  it('a copy: names the destination and the size of the source', async () => {
    const dir = await tmp();
    await fs.writeFile(join(dir, 'tokenizer.json'), 'y'.repeat(3000));
    disk(1000);
    await expect(copyFileTo(join(dir, 'tokenizer.json'), join(dir, 'out.json'))).rejects.toThrow(
      `${join(dir, 'out.json')}: no space left on device: writing it needs 2.9 KiB, 1000 B free`,
    );
  });
});
