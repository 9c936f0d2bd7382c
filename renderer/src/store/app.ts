import { message } from './request.ts';
import type { AppSlice, Slice } from './types.ts';

export const appSlice: Slice<AppSlice> = (set, get, { api, storage }) => ({
  view: 'project',
  theme: (storage?.getItem('studio.theme') as 'light' | 'dark' | null) ?? 'light',
  appInfo: null,
  backend: null,
  recent: [],
  methods: [],
  host: { state: 'up', message: '', interruptedRuns: [] },

  setView: (view) => set({ view }),
  setTheme: (theme) => {
    storage?.setItem('studio.theme', theme);
    set({ theme });
  },

  async init() {
    const { request } = get();
    // each answer shows as soon as it arrives: the backend probe can take seconds
    await Promise.all([
      request('app', 'app.info', {}).then((appInfo) => set({ appInfo })),
      request('app', 'methods.list', {}).then((methods) => set({ methods: methods ?? [] })),
      request('app', 'projects.recent', {}).then((recent) => set({ recent: recent ?? [] })),
      request('backend', 'backend.report', {}).then((backend) => set({ backend })),
      get().refreshLiveRuns(),
      get().loadTrainingFields(),
    ]);
  },

  async restartEngine() {
    set({ host: { ...get().host, state: 'restarting', message: 'starting the engine' } });
    try {
      await api.restartEngine();
      set((s) => ({ host: { ...s.host, state: 'up', message: '' } }));
      await get().refreshRuns();
    } catch (error) {
      set((s) => ({ host: { ...s.host, state: 'down', message: message(error) } }));
    }
  },

  handleEvents(events) {
    // consecutive steps of one run fold into one update; anything else keeps its place in the order
    let i = 0;
    while (i < events.length) {
      const event = events[i];
      if (event.type !== 'run.event') {
        get().handleEvent(event);
        i += 1;
        continue;
      }
      const steps = [];
      while (i < events.length) {
        const next = events[i];
        if (next.type !== 'run.event' || next.runDir !== event.runDir) break;
        steps.push(next.event);
        i += 1;
      }
      get().applyRunEvents(event.runDir, steps);
    }
  },

  handleEvent(event) {
    switch (event.type) {
      case 'run.event':
        get().applyRunEvents(event.runDir, [event.event]);
        return;
      case 'run.state':
        get().applyRunState(event.run);
        return;
      case 'eigen.progress':
      case 'eigen.done':
      case 'eigen.failed':
        get().applyEigenEvent(event);
        return;
      case 'host.state':
        set((s) => ({
          host: {
            state: event.state,
            message: event.message,
            interruptedRuns: event.state === 'down' ? event.interruptedRuns : s.host.interruptedRuns,
          },
        }));
        if (event.state === 'up') {
          void get().refreshRuns();
          void get().refreshLiveRuns();
        }
        return;
    }
  },
});
