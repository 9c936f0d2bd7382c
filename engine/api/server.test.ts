import { promises as fs } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Reply, StudioEvent } from './contract.ts';
import { type RunningServer, startServer } from './server.ts';
import type { EngineTransport } from './transport.ts';

/** A transport that answers from a table, standing in for the engine host. */
function fakeTransport() {
  const listeners = new Set<(e: StudioEvent) => void>();
  const calls: { method: string; payload: unknown }[] = [];
  const transport: EngineTransport = {
    async call(method, payload): Promise<Reply> {
      calls.push({ method, payload });
      if (method === 'projects.recent') return { ok: true, result: [] };
      return { ok: false, error: { code: 'invalid_input', message: `bad ${method}` } };
    },
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async restart() {},
    hostState: () => ({ type: 'host.state', state: 'up', message: 'ok', interruptedRuns: [] }),
    async close() {},
  };
  const emit = (e: StudioEvent) => {
    for (const l of listeners) l(e);
  };
  return { transport, calls, emit };
}

let server: RunningServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

async function withUi(): Promise<string> {
  const dir = await fs.mkdtemp(join(tmpdir(), 'studio-ui-'));
  await fs.writeFile(join(dir, 'index.html'), '<html>studio</html>');
  await fs.writeFile(join(tmpdir(), 'secret.txt'), 'secret');
  return dir;
}

describe('browser-mode server', () => {
  it('refuses requests without the token (401) and serves the UI with it', async () => {
    const fake = fakeTransport();
    server = await startServer({ transport: fake.transport, staticDir: await withUi() });
    const base = `http://127.0.0.1:${server.port}`;
    expect((await fetch(`${base}/`)).status).toBe(401);
    expect((await fetch(`${base}/api/call/projects.recent`, { method: 'POST', body: '{}' })).status).toBe(
      401,
    );
    expect((await fetch(`${base}/?token=wrong`)).status).toBe(401);
    const page = await fetch(server.url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('studio');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const cookie = page.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/HttpOnly/);
    // the cookie alone authorises later requests (assets, API calls)
    const api = await fetch(`${base}/api/call/projects.recent`, {
      method: 'POST',
      body: '{}',
      headers: { cookie: cookie.split(';')[0] },
    });
    expect(api.status).toBe(200);
    expect(await api.json()).toEqual({ ok: true, result: [] });
  });

  it('maps error codes to HTTP statuses and refuses unknown methods and bad JSON', async () => {
    const fake = fakeTransport();
    server = await startServer({ transport: fake.transport, staticDir: null });
    const headers = { 'x-studio-token': server.token };
    const base = `http://127.0.0.1:${server.port}/api/call`;
    const bad = await fetch(`${base}/runs.list`, { method: 'POST', headers, body: '{"projectDir":"/p"}' });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.message).toBe('bad runs.list');
    expect((await fetch(`${base}/rm-rf`, { method: 'POST', headers, body: '{}' })).status).toBe(404);
    const notJson = await fetch(`${base}/runs.list`, { method: 'POST', headers, body: '{oops' });
    expect(notJson.status).toBe(400);
    expect((await notJson.json()).error.message).toMatch(/not JSON/);
    expect(fake.calls.map((c) => c.method)).toEqual(['runs.list']);
  });

  it('refuses a foreign Host header (DNS rebinding) and paths outside the UI folder', async () => {
    const fake = fakeTransport();
    server = await startServer({ transport: fake.transport, staticDir: await withUi() });
    // fetch cannot set Host; a raw request can, as a rebinding page's browser would
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(server!.url, { headers: { host: `evil.example:${server!.port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(403);
    const outside = await fetch(`http://127.0.0.1:${server.port}/..%2f..%2fsecret.txt`, {
      headers: { 'x-studio-token': server.token },
    });
    expect(await outside.text()).not.toContain('secret');
  });

  it('pushes the host state and engine events over the WebSocket, only with the token', async () => {
    const fake = fakeTransport();
    server = await startServer({ transport: fake.transport, staticDir: null });
    const denied = new WebSocket(`ws://127.0.0.1:${server.port}/api/events`);
    await new Promise<void>((resolve) => denied.on('error', () => resolve()));
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api/events?token=${server.token}`);
    const received: StudioEvent[] = [];
    await new Promise<void>((resolve) => {
      ws.on('message', (data) => {
        received.push(JSON.parse(String(data)));
        if (received.length === 1) fake.emit({ type: 'eigen.failed', jobId: 'j', runDir: '/r', error: 'x' });
        if (received.length === 2) resolve();
      });
    });
    ws.close();
    expect(received.map((e) => e.type)).toEqual(['host.state', 'eigen.failed']);
  });
});
