import type {
  Input,
  MethodId,
  Output,
  ProjectSummary,
  RunInfo,
  StudioApi,
} from '../../../engine/common/contract.ts';
import { ApiError } from '../../../engine/common/contract.ts';

/** An API double answering from a table of handlers; unknown methods fail like the engine would. */
export function fakeApi(
  handlers: Partial<{ [M in MethodId]: (input: Input<M>) => Output<M> | Promise<Output<M>> }>,
) {
  const calls: string[] = [];
  /** What each call was given, in the order of `calls`. */
  const inputs: unknown[] = [];
  const api: StudioApi = {
    transport: 'http',
    async call(id, input) {
      calls.push(id);
      inputs.push(input);
      const handler = handlers[id] as ((i: unknown) => unknown) | undefined;
      if (!handler) throw new ApiError('engine_error', `no ${id}`);
      return (await handler(input)) as never;
    },
    onEvent: () => () => {},
    restartEngine: async () => {},
  };
  return { api, calls, inputs };
}

export function runInfo(patch: Partial<RunInfo> = {}): RunInfo {
  return {
    id: 'r1',
    dir: '/p/runs/r1',
    projectDir: '/p',
    status: 'running',
    live: true,
    method: 'lora',
    createdAt: '2026-01-01T00:00:00Z',
    step: 0,
    totalSteps: 10,
    epoch: 0,
    lastLoss: null,
    lastEvalLoss: null,
    lastCheckpoint: null,
    backend: 'cpu',
    error: null,
    config: {},
    ...patch,
  };
}

export function projectSummary(patch: Partial<ProjectSummary> = {}): ProjectSummary {
  return {
    dir: '/p',
    name: 'p',
    modelDir: '/m',
    dataPath: '/d',
    task: 'causal-lm',
    method: 'lora',
    methodConfig: {},
    training: {},
    settings: {},
    runs: [],
    ...patch,
  };
}
