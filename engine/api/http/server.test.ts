import { promises as fs } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Reply, StudioEvent } from '../../common/contract.ts';
import type { EngineTransport } from '../../common/host-protocol.ts';
import { type RunningServer, startServer } from './server.ts';

type Failure = Extract<Reply, { ok: false }>;

/** A transport that answers from a table, standing in for the engine host. */
function fakeTransport() {
  const listeners = new Set<(e: StudioEvent) => void>();
  const calls: { method: string; payload: unknown }[] = [];
  const transport: EngineTransport = {
    async call(method, payload): Promise<Reply> {
      calls.push({ method, payload });
      if (method === 'projects.recent') return { ok: true, result: [] };
      if (method === 'runs.start') return { ok: false, error: { code: 'out_of_memory', message: 'too big' } };
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
    expect(((await bad.json()) as Failure).error.message).toBe('bad runs.list');
    expect((await fetch(`${base}/rm-rf`, { method: 'POST', headers, body: '{}' })).status).toBe(404);
    // running out of memory is no bug of the server: 507, not 500
    expect((await fetch(`${base}/runs.start`, { method: 'POST', headers, body: '{}' })).status).toBe(507);
    const notJson = await fetch(`${base}/runs.list`, { method: 'POST', headers, body: '{oops' });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as Failure).error.message).toMatch(/not JSON/);
    expect(fake.calls.map((c) => c.method)).toEqual(['runs.list', 'runs.start']);
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

/** A raw request (node:http sets any header, unlike fetch), resolving with the status and body. */
function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer | string; chunks?: number },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'POST', headers: options.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    const body = options.body ?? '';
    const chunks = options.chunks ?? 1;
    const size = Math.ceil(body.length / chunks);
    for (let i = 0; i < chunks; i++) req.write(body.slice(i * size, (i + 1) * size));
    req.end();
  });
}

describe('browser-mode server: bad requests', () => {
  it('answers malformed percent-encoding and a malformed request target with 400', async () => {
    const fake = fakeTransport();
    server = await startServer({ transport: fake.transport, staticDir: await withUi() });
    const bad = await rawRequest(`http://127.0.0.1:${server.port}/%E0%A4%A`, {
      method: 'GET',
      headers: { 'x-studio-token': server.token },
    });
    expect(bad).toEqual({ status: 400, body: expect.stringMatching(/malformed percent-encoding/) });
    const target = await rawRequest(`http://127.0.0.1:${server.port}//[`, {
      method: 'GET',
      headers: { 'x-studio-token': server.token },
    });
    expect(target).toEqual({ status: 400, body: expect.stringMatching(/malformed request target/) });
  });

  it('refuses a 200,000-deep JSON body with 400, not a stack overflow', async () => {
    const fake = fakeTransport();
    server = await startServer({ transport: fake.transport, staticDir: null });
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    const reply = await rawRequest(`http://127.0.0.1:${server.port}/api/call/runs.list`, {
      headers: { 'x-studio-token': server.token },
      body: deep,
    });
    expect(reply.status).toBe(400);
    expect(JSON.parse(reply.body).error.message).toMatch(/nests deeper than 100 levels/);
    expect(fake.calls).toEqual([]);
  });

  it('answers a body over the limit with 413 and a message, declared or streamed', async () => {
    const fake = fakeTransport();
    server = await startServer({ transport: fake.transport, staticDir: null });
    const url = `http://127.0.0.1:${server.port}/api/call/runs.list`;
    const body = Buffer.alloc(9 * 1024 * 1024, 0x20);
    const declared = await rawRequest(url, {
      headers: { 'x-studio-token': server.token, 'content-length': String(body.length) },
      body,
    });
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body).error.message).toMatch(
      /runs.list is 9437184 bytes, over the limit of 8 MiB/,
    );
    // without Content-Length the body arrives chunked and the limit is found while reading
    const streamed = await rawRequest(url, {
      headers: { 'x-studio-token': server.token, 'transfer-encoding': 'chunked' },
      body,
      chunks: 64,
    });
    expect(streamed.status).toBe(413);
    expect(JSON.parse(streamed.body).error.message).toMatch(/over the limit of 8 MiB/);
    expect(fake.calls).toEqual([]);
  });
});

describe('browser-mode server: requests from other pages', () => {
  it('refuses state-changing calls whose Origin, Sec-Fetch-Site or Referer is not its own (403)', async () => {
    const fake = fakeTransport();
    server = await startServer({ transport: fake.transport, staticDir: null });
    const own = `http://127.0.0.1:${server.port}`;
    const url = `${own}/api/call/projects.recent`;
    const cookie = `studio_token=${server.token}`;
    const post = (headers: Record<string, string>) =>
      rawRequest(url, { headers: { cookie, 'content-type': 'text/plain', ...headers }, body: '{}' });
    const foreign: Record<string, string>[] = [
      { origin: 'http://127.0.0.1:9999' },
      { origin: 'null' },
      { 'sec-fetch-site': 'same-site' },
      { 'sec-fetch-site': 'cross-site' },
      { referer: 'http://127.0.0.1:9999/page.html' },
      { referer: 'not a url' },
    ];
    for (const headers of foreign) {
      const reply = await post(headers);
      expect(reply.status, JSON.stringify(headers)).toBe(403);
      expect(reply.body).toMatch(/not accepted \(only from the studio's page\)/);
    }
    expect(fake.calls).toEqual([]);
    // the studio's own page, and programs that send none of these headers, get through
    const accepted: Record<string, string>[] = [
      { origin: own },
      { origin: `http://localhost:${server.port}` },
      { 'sec-fetch-site': 'same-origin', referer: `${own}/` },
      {},
    ];
    for (const headers of accepted) {
      expect((await post(headers)).status, JSON.stringify(headers)).toBe(200);
    }
    expect(fake.calls).toHaveLength(4);
  });

  it('refuses a WebSocket upgrade from another page with 403 and a message', async () => {
    const fake = fakeTransport();
    server = await startServer({ transport: fake.transport, staticDir: null });
    const url = `ws://127.0.0.1:${server.port}/api/events?token=${server.token}`;
    const refused = new WebSocket(url, { origin: 'http://127.0.0.1:9999' });
    const status = await new Promise<number>((resolve) =>
      refused.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)),
    );
    expect(status).toBe(403);
    const ok = new WebSocket(url, { origin: `http://127.0.0.1:${server.port}` });
    const first = await new Promise<StudioEvent>((resolve) =>
      ok.once('message', (data) => resolve(JSON.parse(String(data)))),
    );
    ok.close();
    expect(first.type).toBe('host.state');
  });
});
