/**
 * Browser mode: the contract over HTTP (`POST /api/call/<method>`) and events over a WebSocket (`/api/events`),
 * on 127.0.0.1 only, guarded by a random token. The page is opened as `/?token=…`; the server then sets an
 * HttpOnly same-site cookie so the page's assets, calls and socket carry the token without exposing it to scripts
 * of other origins.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize, resolve, sep } from 'node:path';
import { WebSocketServer } from 'ws';
import { type ApiErrorCode, isMethodId, type Reply } from '../../common/contract.ts';
import type { EngineTransport } from '../../common/host-protocol.ts';
import { contentType } from '../../common/mime.ts';
import { decodePath, foreignOrigin, jsonDepth } from './request-guard.ts';

export interface ServeOptions {
  transport: EngineTransport;
  /** 0 or absent: a free port. */
  port?: number;
  /** The built renderer (index.html + assets); null serves the API only. */
  staticDir: string | null;
  token?: string;
}

export interface RunningServer {
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

const COOKIE = 'studio_token';
const MAX_BODY = 8 * 1024 * 1024;
/** Past the limit the rest of a body is read and dropped, so the client sees the 413 instead of a reset. */
const MAX_DRAIN = 64 * 1024 * 1024;
/** Contract payloads nest a few levels; far deeper JSON is refused before it is parsed. */
const MAX_JSON_DEPTH = 100;
const statusOf: Record<ApiErrorCode, number> = {
  invalid_input: 400,
  unauthorized: 401,
  not_found: 404,
  conflict: 409,
  engine_error: 500,
  host_down: 503,
  // not bugs: the machine ran out of room for what was asked
  out_of_memory: 507,
  io: 507,
};

function sameToken(a: string | undefined | null, b: string): boolean {
  if (!a) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookieToken(req: IncomingMessage): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === COOKIE) return rest.join('=');
  }
  return undefined;
}

function csp(port: number): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    `connect-src 'self' ws://127.0.0.1:${port} ws://localhost:${port}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(text);
}

/** A request refused with an HTTP status and a message, before it reaches the engine. */
class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Reads and drops what is left of a body, closing the connection if the client keeps sending. */
function drain(req: IncomingMessage, received = 0): void {
  let size = received;
  req.removeAllListeners('data');
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_DRAIN) req.destroy();
  });
  req.resume();
}

function readBody(req: IncomingMessage, method: string): Promise<string> {
  const tooLarge = (bytes: string) =>
    new RequestError(
      413,
      `request body of ${method} is ${bytes} bytes, over the limit of ${MAX_BODY / 1024 / 1024} MiB`,
    );
  const declared = Number(req.headers['content-length']);
  if (declared > MAX_BODY) {
    drain(req);
    return Promise.reject(tooLarge(String(declared)));
  }
  return new Promise((resolveBody, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        drain(req, size);
        reject(tooLarge(`more than ${MAX_BODY}`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolveBody(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseBody(text: string, method: string): unknown {
  if (text.length === 0) return {};
  if (jsonDepth(text) > MAX_JSON_DEPTH) {
    throw new RequestError(400, `request body of ${method} nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new RequestError(400, `request body of ${method} is not JSON: ${(error as Error).message}`);
  }
}

/** The request target as a URL; null when it does not parse (`GET http://[ HTTP/1.1`). */
function requestUrl(req: IncomingMessage): URL | null {
  try {
    return new URL(req.url ?? '/', 'http://127.0.0.1');
  } catch {
    return null;
  }
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const token = options.token ?? randomBytes(24).toString('base64url');
  const { transport, staticDir } = options;
  let port = 0;

  const ownOrigins = () => [`http://127.0.0.1:${port}`, `http://localhost:${port}`];
  const allowedHost = (req: IncomingMessage): boolean => {
    // a DNS-rebinding page would send its own host name; only loopback names are ours
    const host = req.headers.host ?? '';
    return host === `127.0.0.1:${port}` || host === `localhost:${port}`;
  };
  const authorized = (req: IncomingMessage, url: URL): boolean =>
    sameToken(req.headers['x-studio-token'] as string | undefined, token) ||
    sameToken(cookieToken(req), token) ||
    sameToken(url.searchParams.get('token'), token);

  const refuse = (res: ServerResponse, status: number, message: string) => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`${status}: ${message}\n`);
  };

  const serveStatic = async (res: ServerResponse, url: URL) => {
    if (!staticDir) return refuse(res, 404, 'this server has no UI (renderer not built)');
    const root = resolve(staticDir);
    const path = decodePath(url.pathname);
    if (path === null) return refuse(res, 400, `malformed percent-encoding in ${url.pathname}`);
    const wanted = normalize(join(root, path));
    if (wanted !== root && !wanted.startsWith(root + sep))
      return refuse(res, 403, 'path outside the UI folder');
    let file = wanted;
    const stat = await fs.stat(file).catch(() => null);
    // the UI is one page: unknown paths get index.html
    if (!stat || stat.isDirectory()) file = join(root, 'index.html');
    const body = await fs.readFile(file).catch(() => null);
    if (!body) return refuse(res, 404, `${url.pathname} not found`);
    const headers: Record<string, string> = {
      'content-type': contentType(file),
      'content-security-policy': csp(port),
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': file.endsWith('index.html') ? 'no-store' : 'max-age=3600',
    };
    if (url.searchParams.has('token')) {
      headers['set-cookie'] = `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`;
    }
    res.writeHead(200, headers);
    res.end(body);
  };

  const handleCall = async (req: IncomingMessage, res: ServerResponse, method: string) => {
    if (req.method !== 'POST')
      return sendJson(res, 405, { ok: false, error: { code: 'invalid_input', message: 'use POST' } });
    if (!isMethodId(method)) {
      return sendJson(res, 404, {
        ok: false,
        error: { code: 'not_found', message: `unknown API method "${method}"` },
      });
    }
    let payload: unknown;
    try {
      payload = parseBody(await readBody(req, method), method);
    } catch (error) {
      if (!(error instanceof RequestError)) throw error;
      return sendJson(res, error.status, {
        ok: false,
        error: { code: 'invalid_input', message: error.message },
      });
    }
    const reply: Reply = await transport.call(method, payload);
    sendJson(res, reply.ok ? 200 : statusOf[reply.error.code], reply);
  };

  const server = createServer((req, res) => {
    const url = requestUrl(req);
    if (!url) return refuse(res, 400, 'malformed request target');
    if (!allowedHost(req)) return refuse(res, 403, 'unexpected Host header');
    if (!authorized(req, url)) {
      return refuse(res, 401, 'this studio URL needs its token: open the URL printed by `studio serve`');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const foreign = foreignOrigin(req.headers, ownOrigins());
      if (foreign) return refuse(res, 403, foreign);
    }
    const done = (error: unknown) => {
      if (!res.headersSent)
        sendJson(res, 500, { ok: false, error: { code: 'engine_error', message: String(error) } });
    };
    if (url.pathname.startsWith('/api/call/')) {
      handleCall(req, res, url.pathname.slice('/api/call/'.length)).catch(done);
    } else if (url.pathname === '/api/restart-engine' && req.method === 'POST') {
      transport
        .restart()
        .then(() => sendJson(res, 200, { ok: true, result: {} }))
        .catch((error) =>
          sendJson(res, 503, { ok: false, error: { code: 'host_down', message: String(error) } }),
        );
    } else if (req.method === 'GET' || req.method === 'HEAD') {
      serveStatic(res, url).catch(done);
    } else {
      refuse(res, 405, `${req.method} not allowed`);
    }
  });

  const sockets = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  server.on('upgrade', (req, socket, head) => {
    // a socket error (a reset mid-handshake) ends this connection only
    socket.on('error', () => socket.destroy());
    const reject = (status: number, reason: string, message: string) => {
      const body = `${status}: ${message}\n`;
      socket.end(
        `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    };
    const url = requestUrl(req);
    if (!url || url.pathname !== '/api/events') return reject(404, 'Not Found', 'no such socket');
    if (!allowedHost(req)) return reject(403, 'Forbidden', 'unexpected Host header');
    const foreign = foreignOrigin(req.headers, ownOrigins());
    if (foreign) return reject(403, 'Forbidden', foreign);
    if (!authorized(req, url)) return reject(401, 'Unauthorized', 'this socket needs the studio token');
    sockets.handleUpgrade(req, socket, head, (ws) => {
      // ws reports a malformed frame (unmasked, reserved opcode, over maxPayload) as an 'error' event and
      // closes the socket itself; unheard, the event would be thrown and take the whole server down
      ws.on('error', () => ws.terminate());
      ws.send(JSON.stringify(transport.hostState()));
    });
  });
  const unsubscribe = transport.onEvent((event) => {
    const text = JSON.stringify(event);
    for (const client of sockets.clients) if (client.readyState === client.OPEN) client.send(text);
  });

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolveListen());
  });
  port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    port,
    token,
    close: async () => {
      unsubscribe();
      for (const client of sockets.clients) client.terminate();
      sockets.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
