import { writeHandoff } from '../../handoff/index.ts';
import type { Handlers } from './context.ts';

export const handoffHandlers: Pick<Handlers, 'handoff.write'> = {
  async 'handoff.write'({ projectDir, out, strategy }) {
    return writeHandoff(projectDir, out, { strategy });
  },
};
