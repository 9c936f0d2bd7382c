import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Reply, StudioEvent } from '../../common/contract.ts';
import { spawnServe } from '../../testing/serve.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const gpt2 = join(root, 'engine/models/fixtures/gpt2');

let work: string;
let serve: ChildProcess;
let port: number;
let token: string;

/** Starts `studio serve --api-only` as its own process, as a user would, and waits for its URL. */
async function startServe(): Promise<void> {
  let url: string;
  ({ child: serve, url } = await spawnServe(['--api-only'], { STUDIO_CONFIG_DIR: join(work, 'config') }));
  const parsed = new URL(url);
  port = Number(parsed.port);
  token = parsed.searchParams.get('token') ?? '';
}

async function call<T>(method: string, payload: unknown): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${port}/api/call/${method}`, {
    method: 'POST',
    headers: { 'x-studio-token': token, 'content-type': 'application/json' },
    body: JSON.stringify(payload),
  });
  const reply = (await response.json()) as Reply;
  if (!reply.ok) throw new Error(`${method}: ${reply.error.message}`);
  return reply.result as T;
}

/** Opens the event socket over raw TCP, sends one frame as is, and resolves when the server closes it. */
function sendRawFrame(frame: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let upgraded = false;
    socket.on('data', (data) => {
      if (upgraded) return;
      const head = data.toString('latin1');
      if (!head.startsWith('HTTP/1.1 101')) reject(new Error(`no upgrade: ${head.split('\r\n')[0]}`));
      upgraded = true;
      socket.write(frame);
    });
    socket.on('error', () => {});
    socket.on('close', () => (upgraded ? resolve() : reject(new Error('closed before the upgrade'))));
    socket.write(
      `GET /api/events?token=${token} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
        'Sec-WebSocket-Version: 13\r\n\r\n',
    );
  });
}

const mask = [1, 2, 3, 4];
const badFrames: [string, Buffer][] = [
  // a client frame must be masked (RFC 6455 §5.1)
  ['an unmasked text frame', Buffer.from([0x81, 0x02, 0x68, 0x69])],
  ['a frame with the reserved opcode 3', Buffer.from([0x83, 0x80, ...mask])],
  // a 64-bit length of 1 MiB, over the server's 64 KiB limit
  ['a frame over the size limit', Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0, ...mask])],
];

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'studio-serve-'));
  const lines = Array.from({ length: 16 }, (_, i) =>
    JSON.stringify({ prompt: `item ${i}:`, completion: ` ${i % 2 ? 'odd' : 'even'}` }),
  );
  await fs.writeFile(join(work, 'train.jsonl'), lines.join('\n'));
  await startServe();
});

afterAll(async () => {
  if (serve.exitCode === null) {
    const exited = new Promise((r) => serve.once('exit', r));
    serve.kill('SIGTERM');
    await exited;
  }
  await fs.rm(work, { recursive: true, force: true });
});

describe('studio serve', () => {
  it('closes only the connection of a malformed WebSocket frame; the API answers and a run goes on', async () => {
    const project = await call<{ dir: string }>('projects.create', {
      dir: join(work, 'project'),
      modelDir: gpt2,
      dataPath: join(work, 'train.jsonl'),
      settings: { training: { maxSteps: 100, batchSize: 2, maxSeqLen: 16 } },
    });
    const events = new WebSocket(`ws://127.0.0.1:${port}/api/events?token=${token}`);
    const seen: StudioEvent[] = [];
    const waiters: { test: (e: StudioEvent) => boolean; resolve: () => void }[] = [];
    events.on('message', (data) => {
      const event = JSON.parse(String(data)) as StudioEvent;
      seen.push(event);
      for (const w of waiters.filter((w) => w.test(event))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    });
    const when = (test: (e: StudioEvent) => boolean) =>
      new Promise<void>((resolve) => waiters.push({ test, resolve }));
    const stateIs = (status: string) => (e: StudioEvent) => e.type === 'run.state' && e.run.status === status;
    await new Promise((r) => events.once('open', r));

    // paused at the first step boundary: 100 steps leave the pause ample time to land before the end
    const paused = when(stateIs('paused'));
    const run = await call<{ dir: string }>('runs.start', { projectDir: project.dir });
    await call('runs.pause', { runDir: run.dir });
    await paused;

    for (const [, frame] of badFrames) await sendRawFrame(frame);

    expect(serve.exitCode).toBeNull();
    expect(await call<unknown[]>('projects.recent', {})).toHaveLength(1);
    const before = seen.length;
    const completed = when(stateIs('completed'));
    await call('runs.resume', { runDir: run.dir });
    await completed;
    // the events socket that sent nothing wrong stayed open through all of it
    expect(seen.slice(before).some((e) => e.type === 'run.event' && e.event.type === 'finished')).toBe(true);
    events.close();
  });
});
