import { promises as fs } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reply, StudioEvent } from '../../common/contract.ts';
import type { EngineTransport } from '../../common/host-protocol.ts';
import { chromiumArgs, chromiumOrSkip } from '../../testing/chromium.ts';
import { type RunningServer, startServer } from './server.ts';

const executablePath = chromiumOrSkip();
const calls: string[] = [];
const transport: EngineTransport = {
  async call(method): Promise<Reply> {
    calls.push(method);
    return { ok: true, result: [] };
  },
  onEvent: () => () => {},
  async restart() {},
  hostState: (): Extract<StudioEvent, { type: 'host.state' }> => ({
    type: 'host.state',
    state: 'up',
    message: 'ok',
    interruptedRuns: [],
  }),
  async close() {},
};

/** What another program on 127.0.0.1 could serve: a page that drives the studio with the user's cookie. */
function attackPage(studio: string): string {
  const script = `
    const results = {};
    const attempts = [
      ['runs.start', { projectDir: '/tmp/p' }],
      ['export.run', { runDir: '/tmp/r', format: 'peft', out: '/tmp/stolen' }],
    ];
    for (const [method, body] of attempts) {
      try {
        await fetch('${studio}/api/call/' + method, {
          method: 'POST', mode: 'no-cors', credentials: 'include',
          headers: { 'content-type': 'text/plain' }, body: JSON.stringify(body),
        });
        results[method] = 'sent';
      } catch (error) {
        results[method] = String(error);
      }
    }
    results.socket = await new Promise((resolve) => {
      const ws = new WebSocket('${studio.replace('http', 'ws')}/api/events');
      ws.onopen = () => resolve('open');
      ws.onerror = () => resolve('refused');
    });
    window.results = results;`;
  return `<!doctype html><title>another app</title><script type="module">${script}</script>`;
}

let studio: RunningServer;
let other: Server;
let browser: Browser;

beforeAll(async () => {
  if (!executablePath) return;
  const ui = await fs.mkdtemp(join(tmpdir(), 'studio-ui-'));
  await fs.writeFile(join(ui, 'index.html'), '<!doctype html><title>studio</title>');
  studio = await startServer({ transport, staticDir: ui });
  const page = attackPage(`http://127.0.0.1:${studio.port}`);
  other = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(page);
  });
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', () => r()));
  browser = await chromium.launch({ executablePath, headless: true, args: chromiumArgs });
});

afterAll(async () => {
  await browser?.close();
  await studio?.close();
  await new Promise((r) => (other ? other.close(r) : r(undefined)));
});

describe.skipIf(!executablePath)('browser-mode server in Chromium', () => {
  it('refuses calls and sockets from another 127.0.0.1 page that carries the studio cookie', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    // the studio's own page: the cookie is set and the page's own calls go through
    await page.goto(studio.url);
    const own = await page.evaluate(async () => {
      const response = await fetch('/api/call/projects.recent', { method: 'POST', body: '{}' });
      return response.status;
    });
    expect(own).toBe(200);
    expect(calls).toEqual(['projects.recent']);

    await page.goto(`http://127.0.0.1:${(other.address() as AddressInfo).port}/`);
    await page.waitForFunction(() => (globalThis as { results?: unknown }).results !== undefined);
    const results = await page.evaluate(() => (globalThis as { results?: Record<string, string> }).results);
    expect(results).toEqual({ 'runs.start': 'sent', 'export.run': 'sent', socket: 'refused' });
    // the page's calls were simple requests (no preflight) with the cookie: only the Origin check stops them
    expect(calls).toEqual(['projects.recent']);
    await context.close();
  });
});
