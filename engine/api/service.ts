/**
 * The studio service: the contract's methods implemented with the engine. It runs in the engine host process
 * (never in a UI process). Every request is parsed with the contract's schema, then with the engine's own
 * schemas (project settings, method configs), and every reply is checked against the contract before it leaves.
 */
import { EventEmitter } from 'node:events';
import type { z } from 'zod';
import {
  ApiError,
  type ApiErrorCode,
  type Contract,
  isMethodId,
  type MethodId,
  type Output,
  parseInput,
  parseOutput,
  type Reply,
  type StudioEvent,
} from './contract.ts';
import { analysisHandlers } from './handlers/analysis.ts';
import { appHandlers } from './handlers/app.ts';
import { budgetHandlers } from './handlers/budget.ts';
import type { ServiceContext } from './handlers/context.ts';
import { dataHandlers } from './handlers/data.ts';
import { fileHandlers } from './handlers/files.ts';
import { insightHandlers } from './handlers/insight.ts';
import { modelHandlers } from './handlers/model.ts';
import { projectHandlers } from './handlers/projects.ts';
import { runHandlers } from './handlers/runs.ts';
import { settingsHandlers } from './handlers/settings.ts';
import { trainingHandlers } from './handlers/training.ts';

export type Handler<M extends MethodId> = (
  input: z.output<Contract[M]['input']>,
  ctx: ServiceContext,
) => Promise<Output<M>>;
export type Handlers = { [M in MethodId]: Handler<M> };

export interface StudioService {
  /** Never throws: failures are `{ok: false, error}` replies with the engine's message. */
  call(method: string, payload: unknown): Promise<Reply>;
  onEvent(listener: (event: StudioEvent) => void): () => void;
  dispose(): Promise<void>;
}

export interface ServiceOptions {
  /** Where recent projects are remembered (default: `STUDIO_CONFIG_DIR`, else ~/.config/adapter-studio). */
  configDir?: string;
}

/** Maps engine errors to API error codes by their class name, so no engine module is imported for it. */
function codeOf(error: unknown): ApiErrorCode {
  if (error instanceof ApiError) return error.code;
  const name = (error as { name?: string })?.name ?? '';
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') return 'not_found';
  if (/ConfigError|TargetError|DataError|ModelError|ZodError|ProjectError|SettingsError/.test(name))
    return 'invalid_input';
  return 'engine_error';
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

export function createStudioService(options: ServiceOptions = {}): StudioService {
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const disposers: (() => Promise<void> | void)[] = [];
  const ctx: ServiceContext = {
    configDir: options.configDir,
    emit: (event) => events.emit('event', event),
    onDispose: (fn) => disposers.push(fn),
  };
  const handlers: Handlers = {
    ...appHandlers,
    ...modelHandlers,
    ...dataHandlers,
    ...budgetHandlers,
    ...projectHandlers,
    ...runHandlers,
    ...insightHandlers,
    ...analysisHandlers,
    ...settingsHandlers,
    ...fileHandlers,
    ...trainingHandlers,
  };

  return {
    async call(method, payload) {
      try {
        if (!isMethodId(method)) throw new ApiError('not_found', `unknown API method "${method}"`);
        const input = parseInput(method, payload);
        const handler = handlers[method] as Handler<typeof method>;
        const result = await handler(input as never, ctx);
        return { ok: true, result: parseOutput(method, result) };
      } catch (error) {
        if (process.env.STUDIO_DEBUG && error instanceof Error) console.error(error.stack);
        return { ok: false, error: { code: codeOf(error), message: messageOf(error) } };
      }
    },
    onEvent(listener) {
      events.on('event', listener);
      return () => events.off('event', listener);
    },
    async dispose() {
      for (const fn of disposers.reverse()) await fn();
      events.removeAllListeners();
    },
  };
}
