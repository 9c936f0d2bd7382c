/**
 * The UI side of the engine host protocol: speaks the contract with an engine host process, whatever started
 * it (`child_process.fork` in browser mode: engine/api/fork-host.ts; Electron's utilityProcess in the app).
 */
import { ApiError, type Reply, type StudioEvent } from './contract.ts';
import type { EngineTransport, HostMessage, HostRequest } from './host-protocol.ts';

// timers exist wherever this runs (Node, Electron's main process); the ES library this folder is checked
// against declares none
declare function setTimeout(callback: () => void, ms: number): unknown;
declare function clearTimeout(timer: unknown): void;

/** A started engine host process, whatever started it (child_process here, utilityProcess in Electron). */
export interface HostProcess {
  send(message: HostRequest): void;
  onMessage(listener: (message: HostMessage) => void): void;
  onExit(listener: (code: number | null, signal: string | null) => void): void;
  kill(): void;
}

export type SpawnHost = () => HostProcess;

interface Pending {
  resolve: (reply: Reply) => void;
}

/**
 * Runs the service in a separate engine host process and speaks the contract with it. When the host dies,
 * pending calls fail with `host_down`, listeners get a `host.state` event naming the runs that were live, and
 * `restart()` starts a fresh host (from which those runs resume from their last checkpoint).
 */
export class EngineHost implements EngineTransport {
  private proc: HostProcess | null = null;
  private ready: Promise<void> | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(event: StudioEvent) => void>();
  /** Runs the host reported as live, so a crash can name them. */
  private readonly liveRuns = new Set<string>();
  private closing = false;
  private downMessage: string | null = null;
  private lastState: Extract<StudioEvent, { type: 'host.state' }> = {
    type: 'host.state',
    state: 'restarting',
    message: 'starting the engine',
    interruptedRuns: [],
  };

  constructor(private readonly spawn: SpawnHost) {}

  start(): Promise<void> {
    if (this.ready) return this.ready;
    this.closing = false;
    this.downMessage = null;
    const proc = this.spawn();
    this.proc = proc;
    this.ready = new Promise<void>((resolve, reject) => {
      let started = false;
      proc.onMessage((message) => {
        if (message.kind === 'ready') {
          started = true;
          resolve();
          this.emit({
            type: 'host.state',
            state: 'up',
            message: `engine running (pid ${message.pid})`,
            interruptedRuns: [],
          });
        } else if (message.kind === 'reply') {
          const pending = this.pending.get(message.id);
          this.pending.delete(message.id);
          pending?.resolve(message.reply);
        } else if (message.kind === 'event') {
          this.track(message.event);
          this.emit(message.event);
        }
      });
      proc.onExit((code, signal) => {
        if (this.proc !== proc) return;
        this.proc = null;
        this.ready = null;
        const how = signal ? `signal ${signal}` : `exit code ${code}`;
        const message = `the engine process stopped (${how})`;
        if (!started) reject(new ApiError('host_down', `${message} before it was ready`));
        for (const [, pending] of this.pending) {
          pending.resolve({ ok: false, error: { code: 'host_down', message } });
        }
        this.pending.clear();
        if (this.closing) return;
        this.downMessage = message;
        const interruptedRuns = [...this.liveRuns];
        this.liveRuns.clear();
        this.emit({ type: 'host.state', state: 'down', message, interruptedRuns });
      });
    });
    return this.ready;
  }

  private track(event: StudioEvent): void {
    if (event.type !== 'run.state') return;
    if (event.run.live && (event.run.status === 'running' || event.run.status === 'paused'))
      this.liveRuns.add(event.run.dir);
    else this.liveRuns.delete(event.run.dir);
  }

  hostState(): Extract<StudioEvent, { type: 'host.state' }> {
    return this.lastState;
  }

  private emit(event: StudioEvent): void {
    if (event.type === 'host.state') this.lastState = event;
    for (const listener of this.listeners) listener(event);
  }

  get isUp(): boolean {
    return this.proc !== null;
  }

  async call(method: string, payload: unknown): Promise<Reply> {
    if (!this.proc) {
      const message = this.downMessage ?? 'the engine is not running';
      return { ok: false, error: { code: 'host_down', message: `${message}; restart it to continue` } };
    }
    try {
      await this.start();
    } catch (error) {
      return { ok: false, error: { code: 'host_down', message: (error as Error).message } };
    }
    const proc = this.proc;
    // the host may have died while this call waited for it to be ready
    if (!proc)
      return {
        ok: false,
        error: { code: 'host_down', message: this.downMessage ?? 'the engine is not running' },
      };
    const id = this.nextId++;
    return new Promise<Reply>((resolve) => {
      this.pending.set(id, { resolve });
      proc.send({ kind: 'call', id, method, payload });
    });
  }

  onEvent(listener: (event: StudioEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async restart(): Promise<void> {
    if (this.proc) return;
    this.emit({
      type: 'host.state',
      state: 'restarting',
      message: 'starting the engine',
      interruptedRuns: [],
    });
    await this.start();
  }

  /** Kills the host without a shutdown; used to test crash handling. */
  killForTest(): void {
    this.proc?.kill();
  }

  async close(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.closing = true;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        proc.kill();
        resolve();
      }, 5000);
      proc.onExit(() => {
        clearTimeout(timer);
        resolve();
      });
      proc.send({ kind: 'shutdown' });
    });
  }
}
