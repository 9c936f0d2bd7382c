import {
  type GetState,
  type Route,
  type RouteSlice,
  type SetState,
  type Slice,
  type ViewId,
  views,
} from './types.ts';

export function parseRoute(hash: string): Route {
  const [path, query = ''] = hash.replace(/^#/, '').split('?');
  const name = path.replace(/^\//, '');
  const params = new URLSearchParams(query);
  return {
    view: (views as readonly string[]).includes(name) ? (name as ViewId) : null,
    project: params.get('project') || null,
    run: params.get('run') || null,
    section: params.get('section') || null,
  };
}

export function formatRoute(route: Route): string {
  const params = new URLSearchParams();
  if (route.project) params.set('project', route.project);
  if (route.run) params.set('run', route.run);
  if (route.section) params.set('section', route.section);
  const query = params.toString();
  return `#/${route.view ?? 'project'}${query ? `?${query}` : ''}`;
}

/** The route of what the store shows now. */
export function routeOf(state: ReturnType<GetState>): Route {
  const run = state.runs.find((r) => r.dir === state.selectedRun);
  return {
    view: state.view,
    project: state.project?.dir ?? null,
    run: run?.id ?? null,
    section: state.view === 'analysis' ? state.analysisSection : null,
  };
}

async function follow(set: SetState, get: GetState, route: Route): Promise<void> {
  const s = get();
  if (route.project && route.project !== s.project?.dir) {
    await s.openProject(route.project, { view: route.view ?? undefined, run: route.run ?? undefined });
  } else if (route.run) {
    const run = s.runs.find((r) => r.id === route.run);
    if (run && run.dir !== s.selectedRun) await s.selectRun(run.dir);
  }
  if (route.view) set({ view: route.view });
  if (route.section) set({ analysisSection: route.section });
}

export const routeSlice: Slice<RouteSlice> = (set, get) => {
  /** Routes followed so far: a link followed while the app starts wins over the engine's last project. */
  let followed = 0;
  return {
    started: false,

    async start(route) {
      const { init, request } = get();
      const ready = init();
      if (route.project) {
        await follow(set, get, route);
      } else {
        // no project in the URL: the engine knows which one was open last (this window or another)
        const before = followed;
        const settings = await request('settings', 'settings.get', {});
        // unless the user went somewhere meanwhile
        if (followed === before) {
          if (settings?.lastProject)
            await get().openProject(settings.lastProject, { view: route.view ?? undefined });
          else if (route.view) set({ view: route.view });
        }
      }
      set({ started: true });
      await ready;
    },

    followRoute(route) {
      followed += 1;
      return follow(set, get, route);
    },

    async closeProject() {
      await get().request('settings', 'settings.update', { lastProject: null });
      set({
        project: null,
        model: null,
        preview: null,
        draft: null,
        budget: null,
        comparison: null,
        runs: [],
        selectedRun: null,
        runComparison: null,
        view: 'project',
      });
    },
  };
};
