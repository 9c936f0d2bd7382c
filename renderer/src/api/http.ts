import {
  ApiError,
  type Input,
  type MethodId,
  type Output,
  parseEvent,
  parseInput,
  type StudioApi,
  type StudioEvent,
  unwrapReply,
} from '../../../engine/common/contract.ts';

/**
 * Browser-mode transport: calls go to `POST /api/call/<method>`, events come over one WebSocket that reconnects.
 * The token arrives in the page URL once; the server turns it into an HttpOnly cookie, and the header below
 * covers the first calls as well.
 */
export function createHttpApi(base: URL, token: string | null): StudioApi {
  const listeners = new Set<(event: StudioEvent) => void>();
  let socket: WebSocket | null = null;
  let retry = 500;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers['x-studio-token'] = token;

  const connect = () => {
    const url = new URL('/api/events', base);
    url.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
    if (token) url.searchParams.set('token', token);
    socket = new WebSocket(url);
    socket.onopen = () => {
      retry = 500;
    };
    socket.onmessage = (message) => {
      let event: StudioEvent;
      try {
        event = parseEvent(JSON.parse(String(message.data)));
      } catch (error) {
        console.error(error);
        return;
      }
      for (const listener of listeners) listener(event);
    };
    socket.onclose = () => {
      socket = null;
      if (listeners.size === 0) return;
      for (const listener of listeners) {
        listener({
          type: 'host.state',
          state: 'restarting',
          message: 'lost the connection to the studio server; reconnecting',
          interruptedRuns: [],
        });
      }
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 8000);
    };
  };

  return {
    transport: 'http',
    async call<M extends MethodId>(id: M, input: Input<M>): Promise<Output<M>> {
      parseInput(id, input);
      let response: Response;
      try {
        response = await fetch(new URL(`/api/call/${id}`, base), {
          method: 'POST',
          headers,
          body: JSON.stringify(input),
          credentials: 'same-origin',
        });
      } catch (error) {
        throw new ApiError('host_down', `cannot reach the studio server: ${(error as Error).message}`);
      }
      if (response.status === 401) throw new ApiError('unauthorized', await response.text());
      return unwrapReply(id, await response.json());
    },
    onEvent(listener) {
      listeners.add(listener);
      if (!socket) connect();
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) socket?.close();
      };
    },
    async restartEngine() {
      const response = await fetch(new URL('/api/restart-engine', base), { method: 'POST', headers });
      if (!response.ok) {
        const body = (await response.json().catch(() => null)) as { error?: { message?: string } } | null;
        throw new ApiError('host_down', body?.error?.message ?? `restart failed (${response.status})`);
      }
    },
  };
}

declare global {
  interface Window {
    /** Set by the Electron preload. */
    studio?: StudioApi;
  }
}

/** The preload's API in the desktop app, else HTTP to the server that served this page. */
export function connectApi(): StudioApi {
  if (window.studio) return window.studio;
  const url = new URL(window.location.href);
  const token = url.searchParams.get('token');
  if (token) {
    // keep the token out of the visible URL and history; the cookie carries it from here
    url.searchParams.delete('token');
    window.history.replaceState(null, '', url.pathname + url.search + url.hash);
  }
  return createHttpApi(new URL(window.location.origin), token);
}
