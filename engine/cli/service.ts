import { createStudioService, type StudioService } from '../api/service.ts';
import { type Input, type MethodId, type Output, unwrapReply } from '../common/contract.ts';
import { CliError } from './command.ts';

/**
 * Runs API methods in this process with the service the app uses, so a command that does what a view does
 * gives the same answer. A failed call is a one-line CLI error with the service's message.
 */
export async function withService<T>(fn: (call: ServiceCall) => Promise<T>): Promise<T> {
  const service = createStudioService();
  try {
    return await fn(caller(service));
  } finally {
    await service.dispose();
  }
}

export type ServiceCall = <M extends MethodId>(id: M, input: Input<M>) => Promise<Output<M>>;

function caller(service: StudioService): ServiceCall {
  return async (id, input) => {
    const reply = await service.call(id, input);
    if (!reply.ok) throw new CliError(reply.error.message, reply.error.code === 'invalid_input' ? 2 : 1);
    return unwrapReply(id, reply);
  };
}
