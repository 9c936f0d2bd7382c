import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { truncateRunLogs } from './logs.ts';

async function runWithLogs(metrics: string, timeseries: string): Promise<string> {
  const dir = await fs.mkdtemp(join(tmpdir(), 'run-logs-'));
  await fs.mkdir(join(dir, 'analysis'));
  await fs.writeFile(join(dir, 'metrics.jsonl'), metrics);
  await fs.writeFile(join(dir, 'analysis', 'timeseries.jsonl'), timeseries);
  return dir;
}

describe('truncateRunLogs', () => {
  it('drops rows past the checkpoint step from every log of the run by one rule', async () => {
    const dir = await runWithLogs(
      '{"type":"run-started","step":0}\n{"type":"step","step":1}\n{"type":"step","step":2}\n{"type":"warning","code":"x"}\n{"type":"step","step":3}\n{"type":"st',
      '{"step":0}\n{"step":2}\n{"step":3}\n',
    );
    await truncateRunLogs(dir, 2);
    expect(await fs.readFile(join(dir, 'metrics.jsonl'), 'utf8')).toBe(
      '{"type":"run-started","step":0}\n{"type":"step","step":1}\n{"type":"step","step":2}\n{"type":"warning","code":"x"}\n',
    );
    expect(await fs.readFile(join(dir, 'analysis', 'timeseries.jsonl'), 'utf8')).toBe(
      '{"step":0}\n{"step":2}\n',
    );
  });

  it('refuses an analysis log with a broken line in the middle instead of silently dropping it', async () => {
    const dir = await runWithLogs('{"step":1}\n', '{"step":1}\ngarbage\n{"step":2}\n');
    await expect(truncateRunLogs(dir, 1)).rejects.toThrow(/timeseries\.jsonl:2: malformed log line/);
  });
});
