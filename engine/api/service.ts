/**
 * The studio service: the contract's methods implemented with the engine. It runs in the engine host process
 * (never in a UI process). Every request is parsed with the contract's schema, then with the engine's own
 * schemas (project settings, method configs), and every reply is checked against the contract before it leaves.
 */
import { EventEmitter } from 'node:events';
import {
  ApiError,
  type ApiErrorCode,
  isMethodId,
  parseInput,
  parseOutput,
  type Reply,
  type StudioEvent,
} from '../common/contract.ts';
import { describeError, type ErrorCode } from '../common/errors.ts';
import { analysisHandlers } from './handlers/analysis.ts';
import { appHandlers } from './handlers/app.ts';
import { budgetHandlers } from './handlers/budget.ts';
import type { Handler, Handlers, ServiceContext } from './handlers/context.ts';
import { dataHandlers } from './handlers/data.ts';
import { fileHandlers } from './handlers/files.ts';
import { handoffHandlers } from './handlers/handoff.ts';
import { insightHandlers } from './handlers/insight.ts';
import { modelHandlers } from './handlers/model.ts';
import { projectHandlers } from './handlers/projects.ts';
import { runHandlers } from './handlers/runs.ts';
import { settingsHandlers } from './handlers/settings.ts';
import { trainingHandlers } from './handlers/training.ts';

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

/** The API's error kind for each engine error code. */
const apiCodes: Record<ErrorCode, ApiErrorCode> = {
  invalid_input: 'invalid_input',
  not_found: 'not_found',
  conflict: 'conflict',
  out_of_memory: 'out_of_memory',
  io: 'io',
  cancelled: 'conflict',
  internal: 'engine_error',
};

/** The reply error of a failed call: the API's own errors as they are, engine errors by their code. */
export function replyError(error: unknown): { code: ApiErrorCode; message: string } {
  if (error instanceof ApiError) return { code: error.code, message: error.message };
  const { code, message } = describeError(error);
  return { code: apiCodes[code], message };
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
    ...handoffHandlers,
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
        return { ok: false, error: replyError(error) };
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
