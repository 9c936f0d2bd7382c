import type { Reply, StudioEvent } from './contract.ts';

/**
 * Whatever runs the service: an engine host process (`EngineHost`) in the app, or the service itself in tests.
 * `call` never throws: failures come back as `{ok: false, error}` replies.
 */
export interface EngineTransport {
  call(method: string, payload: unknown): Promise<Reply>;
  onEvent(listener: (event: StudioEvent) => void): () => void;
  /** Starts a fresh engine host when the previous one died; a no-op when it is up. */
  restart(): Promise<void>;
  /** The host's state as a `host.state` event, sent to each UI that connects. */
  hostState(): Extract<StudioEvent, { type: 'host.state' }>;
  close(): Promise<void>;
}

/** Messages between the UI-side process and the engine host (child_process IPC or Electron parentPort). */
export type HostRequest =
  | { kind: 'call'; id: number; method: string; payload: unknown }
  | { kind: 'shutdown' };
export type HostMessage =
  | { kind: 'ready'; pid: number }
  | { kind: 'reply'; id: number; reply: Reply }
  | { kind: 'event'; event: StudioEvent };
