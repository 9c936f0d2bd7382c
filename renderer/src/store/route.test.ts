import { describe, expect, it, vi } from 'vitest';
import { createStudioStore } from '../store.ts';
import { formatRoute, parseRoute, routeOf } from './route.ts';
import { fakeApi, projectSummary, runInfo } from './testing.ts';

const done = runInfo({ id: 'r1', dir: '/p/runs/r1', status: 'completed', live: false });
const live = runInfo({ id: 'r2', dir: '/p/runs/r2', createdAt: '2026-01-02T00:00:00Z' });
const detail = (run: typeof done) => ({
  run,
  progress: { step: 0, totalSteps: 10, epoch: 0, tokensPerSec: null, etaSec: null },
  metrics: { runDir: run.dir, steps: [], evals: [], totalRecorded: 0 },
});

function engine(lastProject: string | null, runs = [live, done]) {
  return fakeApi({
    'app.info': () => ({
      version: '0',
      demoModelDir: null,
      demoDataPath: null,
      defaultProjectsDir: '/home/u/AdapterStudio',
      platform: 'linux',
      memoryBytes: 8e9,
    }),
    'methods.list': () => [],
    'projects.recent': () => [],
    'backend.report': () => ({ chosen: 'cpu', reason: '', candidates: [] }),
    'runs.live': () => runs.filter((r) => r.live),
    'settings.get': () => ({ lastProject }),
    'settings.update': (patch) => ({ lastProject: patch.lastProject ?? null }),
    'projects.open': ({ dir }) => projectSummary({ dir, runs }),
    'runs.status': ({ runDir }) => detail(runs.find((r) => r.dir === runDir) ?? done),
  });
}

describe('routes', () => {
  it('read back what they write, with folders that need escaping', () => {
    const route = {
      view: 'analysis' as const,
      project: '/home/u/my project?#1',
      run: 'r1',
      section: 'spectra',
    };
    expect(parseRoute(formatRoute(route))).toEqual(route);
    expect(parseRoute('')).toEqual({ view: null, project: null, run: null, section: null });
    expect(parseRoute('#/nonsense?project=/p')).toMatchObject({ view: null, project: '/p' });
  });

  it('open the linked project, run and view; the section only on the Analysis view', async () => {
    const { api } = engine(null);
    const store = createStudioStore(api);
    await store
      .getState()
      .start(parseRoute(formatRoute({ view: 'analysis', project: '/p', run: 'r1', section: 'spectra' })));
    const s = store.getState();
    expect([s.project?.dir, s.view, s.selectedRun, s.analysisSection]).toEqual([
      '/p',
      'analysis',
      '/p/runs/r1',
      'spectra',
    ]);
    expect(routeOf(s)).toEqual({ view: 'analysis', project: '/p', run: 'r1', section: 'spectra' });
    s.setView('train');
    expect(routeOf(store.getState()).section).toBeNull();
  });

  it("without a project in the URL, open the engine's last project on its live run's Train view", async () => {
    const { api } = engine('/p');
    const store = createStudioStore(api);
    await store.getState().start(parseRoute(''));
    const s = store.getState();
    expect([s.project?.dir, s.view, s.selectedRun]).toEqual(['/p', 'train', '/p/runs/r2']);
    expect(Object.keys(s.liveRuns)).toEqual(['/p/runs/r2']);
    expect(s.started).toBe(true);
  });

  it('stay on the start page after the project was closed, and say so when a linked run is gone', async () => {
    const { api, calls } = engine('/p');
    const store = createStudioStore(api);
    await store.getState().start(parseRoute('#/train?project=/p&run=gone'));
    expect(store.getState().errors.route).toBe('/p has no run gone');
    await store.getState().closeProject();
    expect(calls).toContain('settings.update');
    expect(store.getState().project).toBeNull();
    expect(routeOf(store.getState())).toEqual({ view: 'project', project: null, run: null, section: null });
  });

  it('let a deep link followed while the last project still opens win, whichever answers last', async () => {
    const pending: ((p: ReturnType<typeof projectSummary>) => void)[] = [];
    const { api } = fakeApi({
      'settings.get': () => ({ lastProject: '/last' }),
      'projects.open': () => new Promise((r) => pending.push(r)),
      'runs.status': () => detail(done),
    });
    const store = createStudioStore(api);
    const starting = store.getState().start(parseRoute(''));
    await vi.waitFor(() => expect(pending).toHaveLength(1));
    const following = store.getState().followRoute(parseRoute('#/adapter?project=/linked'));
    await vi.waitFor(() => expect(pending).toHaveLength(2));
    pending[1](projectSummary({ dir: '/linked' }));
    await following;
    pending[0](projectSummary({ dir: '/last' }));
    await starting;
    expect([store.getState().project?.dir, store.getState().view]).toEqual(['/linked', 'adapter']);
  });

  it('leave the last project closed when a link was followed before the engine named it', async () => {
    let answer: (s: { lastProject: string | null }) => void = () => {};
    const { api, calls } = fakeApi({
      'settings.get': () =>
        new Promise((r) => {
          answer = r;
        }),
      'projects.open': ({ dir }) => projectSummary({ dir }),
    });
    const store = createStudioStore(api);
    const starting = store.getState().start(parseRoute(''));
    await store.getState().followRoute(parseRoute('#/train?project=/linked'));
    answer({ lastProject: '/last' });
    await starting;
    expect(store.getState().project?.dir).toBe('/linked');
    expect(calls.filter((c) => c === 'projects.open')).toHaveLength(1);
  });
});
