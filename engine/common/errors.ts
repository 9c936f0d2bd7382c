/**
 * What kind of failure an engine error is, so the API (error kinds, HTTP statuses) and the CLI decide from a
 * code instead of from class names. Every engine error class extends `StudioError`; errors from the runtime
 * (file system, wasm, zod) are classified by `describeError`, which also says what to do next.
 */
import { z } from 'zod';

export const errorCodes = [
  /** The request, a setting or a file's content is wrong; the message names it. */
  'invalid_input',
  'not_found',
  /** The action clashes with the current state (a run in progress, a file in the way). */
  'conflict',
  'out_of_memory',
  /** The file system refused (disk full, read failure). */
  'io',
  'cancelled',
  /** Anything else: a bug. */
  'internal',
] as const;
export type ErrorCode = (typeof errorCodes)[number];

export class StudioError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StudioError';
  }
}

export interface DescribedError {
  code: ErrorCode;
  message: string;
}

/** Node's errno codes by kind; other errno codes are `io`. */
const errnoCodes: Record<string, ErrorCode> = {
  ENOENT: 'not_found',
  EACCES: 'invalid_input',
  EPERM: 'invalid_input',
  EISDIR: 'invalid_input',
  ENOTDIR: 'invalid_input',
  ENAMETOOLONG: 'invalid_input',
  ELOOP: 'invalid_input',
  EEXIST: 'conflict',
  ENOTEMPTY: 'conflict',
  EBUSY: 'conflict',
  ENOMEM: 'out_of_memory',
};

/**
 * How the runtimes report memory they could not get: the wasm heap's `memory access out of bounds` and
 * failed growth, V8's failed ArrayBuffer or typed-array allocation.
 */
const OUT_OF_MEMORY =
  /memory access out of bounds|out of memory|Array buffer allocation failed|Invalid (typed )?array( buffer)? length|WebAssembly\.Memory|Maximum memory size/i;

export const outOfMemoryAdvice =
  'lower the batch size or the maximum sequence length, or enable gradient checkpointing';

/** The code and the message a user should see for any thrown value. */
export function describeError(error: unknown): DescribedError {
  if (error instanceof StudioError) return { code: error.code, message: error.message };
  if (error instanceof z.ZodError) return { code: 'invalid_input', message: error.message };
  if (!(error instanceof Error)) return { code: 'internal', message: String(error) };
  const errno = (error as { code?: unknown }).code;
  if (typeof errno === 'string' && /^E[A-Z]+$/.test(errno)) {
    return { code: errnoCodes[errno] ?? 'io', message: error.message };
  }
  if ((error.name === 'RangeError' || error.name === 'RuntimeError') && OUT_OF_MEMORY.test(error.message)) {
    return {
      code: 'out_of_memory',
      message: `the run needs more memory than the engine could get (${error.message}): ${outOfMemoryAdvice}`,
    };
  }
  return { code: 'internal', message: error.message };
}
