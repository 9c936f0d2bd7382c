import { describe, expect, it, vi } from 'vitest';
import type { Output, RunDetail } from '../../engine/common/contract.ts';
import { ApiError } from '../../engine/common/contract.ts';
import { eventBatcher } from './store/events.ts';
import { fakeApi, projectSummary, runInfo } from './store/testing.ts';
import { applyTrainEvent, createStudioStore, MAX_LIVE_POINTS } from './store.ts';

const run = runInfo();

function detail(): RunDetail {
  return {
    run,
    progress: { step: 0, totalSteps: 10, epoch: 0, tokensPerSec: null, etaSec: null },
    metrics: { runDir: run.dir, steps: [], evals: [], totalRecorded: 0 },
  };
}

describe('applyTrainEvent', () => {
  it('adds step rows, progress and eval rows (loss split from the other metrics)', () => {
    let d = detail();
    d = applyTrainEvent(d, {
      type: 'step',
      step: 1,
      epoch: 0.1,
      loss: 2,
      lr: 0.1,
      gradNorm: 1,
      tokensPerSec: 50,
      etaSec: 9,
    });
    d = applyTrainEvent(d, { type: 'eval', step: 1, metrics: { loss: 1.5, perplexity: 4.48 } });
    expect(d.progress).toMatchObject({ step: 1, epoch: 0.1, tokensPerSec: 50, etaSec: 9 });
    expect(d.metrics.steps).toEqual([{ step: 1, loss: 2, lr: 0.1, gradNorm: 1, tokensPerSec: 50 }]);
    expect(d.metrics.evals).toEqual([{ step: 1, evalLoss: 1.5, metrics: { perplexity: 4.48 } }]);
    expect(d.run.lastLoss).toBe(2);
    expect(d.run.lastEvalLoss).toBe(1.5);
  });

  it('thins the live series of a long run', () => {
    let d = detail();
    for (let step = 1; step <= MAX_LIVE_POINTS + 1; step++) {
      d = applyTrainEvent(d, { type: 'step', step, loss: 1 / step });
    }
    expect(d.metrics.steps.length).toBeLessThan(MAX_LIVE_POINTS);
    expect(d.metrics.steps.at(-1)?.step).toBe(MAX_LIVE_POINTS + 1);
  });
});

describe('studio store', () => {
  it('shows the engine message in place when a call fails', async () => {
    const { api } = fakeApi({
      'projects.open': () => {
        throw new ApiError('invalid_input', '/x/project.json: not a project folder');
      },
    });
    const store = createStudioStore(api);
    await store.getState().openProject('/x');
    expect(store.getState().errors.project).toBe('/x/project.json: not a project folder');
    expect(store.getState().busy.project).toBe(false);
    store.getState().clearError('project');
    expect(store.getState().errors.project).toBeUndefined();
  });

  it('keeps only the newest budget when answers arrive out of order', async () => {
    const resolvers: ((v: Output<'budget.compute'>) => void)[] = [];
    const { api } = fakeApi({ 'budget.compute': () => new Promise((r) => resolvers.push(r)) });
    const store = createStudioStore(api);
    store.setState({ project: projectSummary(), draft: { method: 'lora', config: { r: 8 } } });
    const first = store.getState().refreshBudget();
    const second = store.getState().refreshBudget();
    const budget = (trainable: number) =>
      ({
        method: 'lora',
        trainable,
        frozen: 0,
        totalModelParams: 1,
        percentOfModel: 1,
        targets: [],
        perModule: [],
        tyingGroups: [],
        fileBytes: {},
        memoryBytes: 0,
        memoryBreakdown: {},
      }) as Output<'budget.compute'>;
    resolvers[1](budget(2));
    await second;
    resolvers[0](budget(1));
    await first;
    expect(store.getState().budget?.trainable).toBe(2);
  });

  it("keeps the newest folder listing when a refused folder's fallback answers after the next click", async () => {
    const pending: { dir?: string; answer: (l: Output<'files.list'>) => void; fail: (e: Error) => void }[] =
      [];
    const { api } = fakeApi({
      'files.list': (input) => new Promise((answer, fail) => pending.push({ dir: input.dir, answer, fail })),
    });
    const store = createStudioStore(api);
    const listing = (dir: string): Output<'files.list'> => ({
      dir,
      parent: null,
      roots: [],
      entries: [],
      omitted: 0,
    });
    const refused = store.getState().browse('model', '/home/gone');
    pending[0].fail(new ApiError('invalid_input', '/home/gone does not exist'));
    await vi.waitFor(() => expect(pending).toHaveLength(2));
    // the user clicks into a folder before the fallback (the start folder) has answered
    const click = store.getState().browse('model', '/home/models');
    pending[2].answer(listing('/home/models'));
    await click;
    pending[1].answer(listing('/home'));
    await refused;
    expect(store.getState().listing?.dir).toBe('/home/models');
  });

  it('follows live events: run state, chart rows, a dead engine and its interrupted runs', () => {
    const { api } = fakeApi({});
    const store = createStudioStore(api);
    store.setState({ details: { [run.dir]: detail() }, runs: [run] });
    store
      .getState()
      .handleEvent({ type: 'run.event', runDir: run.dir, event: { type: 'step', step: 3, loss: 1.2 } });
    expect(store.getState().details[run.dir].metrics.steps).toHaveLength(1);
    store.getState().handleEvent({ type: 'run.state', run: { ...run, status: 'paused', step: 3 } });
    expect(store.getState().runs[0].status).toBe('paused');
    store
      .getState()
      .handleEvent({ type: 'host.state', state: 'down', message: 'engine died', interruptedRuns: [run.dir] });
    expect(store.getState().host).toEqual({
      state: 'down',
      message: 'engine died',
      interruptedRuns: [run.dir],
    });
  });

  it('carries the targets over when the method changes', () => {
    const { api } = fakeApi({});
    const store = createStudioStore(api);
    store.setState({
      methods: [
        {
          name: 'lora',
          label: 'LoRA',
          description: '',
          supportedKinds: [],
          jsonSchema: {},
          defaults: { r: 8 },
        },
        {
          name: 'vera',
          label: 'VeRA',
          description: '',
          supportedKinds: [],
          jsonSchema: {},
          defaults: { r: 256 },
        },
      ],
      draft: { method: 'lora', config: { r: 4, targetModules: ['q_proj'] } },
    });
    store.getState().setMethod('vera');
    expect(store.getState().draft).toEqual({ method: 'vera', config: { r: 256, targetModules: ['q_proj'] } });
  });

  it('keeps the busy flag and the error of views that used to call the API themselves (export, try it)', async () => {
    let release: (v: Output<'tryit.generate'>) => void = () => {};
    const { api } = fakeApi({
      'export.estimate': () => {
        throw new ApiError('not_found', '/p/runs/r1: no checkpoint yet');
      },
      'tryit.generate': () =>
        new Promise((r) => {
          release = r;
        }),
    });
    const store = createStudioStore(api);
    await store.getState().estimateExport(run.dir);
    expect(store.getState().errors['export-estimate']).toBe('/p/runs/r1: no checkpoint yet');
    expect(store.getState().estimates[run.dir]).toBeUndefined();
    const pending = store.getState().generate({ runDir: run.dir, prompt: 'hi' });
    expect(store.getState().busy.try).toBe(true);
    const answer = { text: '!', tokens: 1, ms: 1 };
    release({ base: answer, adapted: answer, checkpoint: 'step-1' });
    await pending;
    expect(store.getState().busy.try).toBe(false);
    expect(store.getState().generated?.checkpoint).toBe('step-1');
  });
});

describe('live events', () => {
  const step = (n: number) => ({
    type: 'run.event' as const,
    runDir: run.dir,
    event: { type: 'step', step: n, loss: 1 },
  });

  it('reach the store in batches: steps wait a moment, a state change goes out at once after them', () => {
    vi.useFakeTimers();
    const batches: string[][] = [];
    const batcher = eventBatcher((events) => batches.push(events.map((e) => e.type)), 100);
    batcher.push(step(1));
    batcher.push(step(2));
    expect(batches).toEqual([]);
    vi.advanceTimersByTime(100);
    expect(batches).toEqual([['run.event', 'run.event']]);
    batcher.push(step(3));
    batcher.push({ type: 'run.state', run });
    expect(batches).toEqual([
      ['run.event', 'run.event'],
      ['run.event', 'run.state'],
    ]);
    vi.advanceTimersByTime(1000);
    expect(batches).toHaveLength(2);
    vi.useRealTimers();
  });

  it('fold a batch of steps into the chart rows and the chip in order', () => {
    const { api } = fakeApi({});
    const store = createStudioStore(api);
    store.setState({ details: { [run.dir]: detail() }, liveRuns: { [run.dir]: run } });
    store
      .getState()
      .handleEvents([
        step(1),
        step(2),
        { type: 'run.state', run: { ...run, status: 'paused', step: 2 } },
        step(3),
      ]);
    const s = store.getState();
    expect(s.details[run.dir].metrics.steps.map((r) => r.step)).toEqual([1, 2, 3]);
    expect(s.details[run.dir].run.status).toBe('paused');
    expect(s.liveRuns[run.dir]).toMatchObject({ status: 'paused', step: 3 });
  });

  it("never let an action's late reply undo a newer state event (pause answered after 'paused' arrived)", async () => {
    let reply: (r: typeof run) => void = () => {};
    const { api } = fakeApi({
      'runs.pause': () =>
        new Promise((r) => {
          reply = r;
        }),
    });
    const store = createStudioStore(api);
    store.setState({ details: { [run.dir]: detail() }, runs: [run], liveRuns: { [run.dir]: run } });
    const pausing = store.getState().pauseRun(run.dir);
    store.getState().handleEvent({ type: 'run.state', run: { ...run, status: 'paused', step: 4 } });
    reply({ ...run, status: 'running', step: 3 });
    await pausing;
    expect(store.getState().runs[0].status).toBe('paused');
    expect(store.getState().details[run.dir].run.status).toBe('paused');
  });
});
