import type { z } from 'zod';
import { StudioError } from '../common/errors.ts';
import { METHOD_NAMES } from '../common/method-names.ts';
import { lora } from './lora/index.ts';
import { loraxs } from './loraxs/index.ts';
import { moslora } from './moslora/index.ts';
import { tinylora } from './tinylora/index.ts';
import { tlora } from './tlora/index.ts';
import type { MethodDefinition, MethodName } from './types.ts';
import { vera } from './vera/index.ts';

/**
 * Every registered method: one line per method folder, keyed by the names of `common/method-names.ts` (the
 * compiler refuses a missing or an extra one). A method not listed here is unknown to the CLI, the project
 * file, the API and the conformance test.
 */
export const methods: Record<MethodName, MethodDefinition> = {
  lora,
  tlora,
  tinylora,
  vera,
  loraxs,
  moslora,
};

/** Registered method names, in the order of `METHOD_NAMES`. */
export function methodNames(): MethodName[] {
  return [...METHOD_NAMES];
}

/** A method config that does not validate: the message lists every problem with its field path. */
export class AdapterConfigError extends StudioError {
  constructor(
    message: string,
    readonly issues: { path: string; message: string }[] = [],
  ) {
    super('invalid_input', message);
    this.name = 'AdapterConfigError';
  }
}

export function getMethod(name: string): MethodDefinition {
  const method = Object.hasOwn(methods, name) ? methods[name as MethodName] : undefined;
  if (!method) {
    throw new AdapterConfigError(`unknown adapter method "${name}"; available: ${methodNames().join(', ')}`);
  }
  return method;
}

/** Validates a method config (defaults filled in) with the method's zod schema. */
export function parseMethodConfig(method: MethodName | string, input: unknown): Record<string, unknown> {
  const definition = getMethod(method);
  const result = definition.schema.safeParse(input ?? {});
  if (!result.success) throw configError(definition.name, result.error);
  return result.data;
}

function configError(method: string, error: z.ZodError): AdapterConfigError {
  const issues = error.issues.map((issue) => ({
    path: issue.path.map(String).join('.') || '(config)',
    message: issue.message,
  }));
  const text = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  return new AdapterConfigError(`invalid ${method} config: ${text}`, issues);
}
