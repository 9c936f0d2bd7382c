import type { z } from 'zod';
import type { Contract, MethodId, Output, StudioEvent } from '../../common/contract.ts';

/** What handlers share inside one service (one engine host). */
export interface ServiceContext {
  configDir?: string;
  emit(event: StudioEvent): void;
  /** Cleanup when the host shuts down (stop runs, cancel jobs). */
  onDispose(fn: () => Promise<void> | void): void;
  /** Per-service state of a handler module, created on first use. */
  state?: Map<string, unknown>;
}

/** Handler-module state kept on the context, so two services (tests) never share it. */
export function stateOf<T>(ctx: ServiceContext, key: string, create: () => T): T {
  ctx.state ??= new Map();
  if (!ctx.state.has(key)) ctx.state.set(key, create());
  return ctx.state.get(key) as T;
}

/** One contract method implemented with the engine: the parsed request in, the reply's result out. */
export type Handler<M extends MethodId> = (
  input: z.output<Contract[M]['input']>,
  ctx: ServiceContext,
) => Promise<Output<M>>;
export type Handlers = { [M in MethodId]: Handler<M> };
