import type { AdapterSlice, Slice } from './types.ts';

/** Config keys the target panel edits (PEFT's target fields, camelCase as in the engine's method schemas). */
export const TARGET_FIELDS = [
  'targetModules',
  'excludeModules',
  'layersToTransform',
  'layersPattern',
] as const;

export const adapterSlice: Slice<AdapterSlice> = (set, get) => {
  let budgetTicket = 0;
  return {
    draft: null,
    budget: null,
    comparison: null,

    setMethod(method) {
      const described = get().methods.find((m) => m.name === method);
      const old = get().draft?.config ?? {};
      const config: Record<string, unknown> = { ...(described?.defaults ?? {}) };
      // targets and layer range carry over: they are the same question for every method
      for (const key of TARGET_FIELDS) if (key in old) config[key] = old[key];
      // the other method's fields (and any text typed into them) are gone
      get().resetForm('adapter');
      set({ draft: { method, config } });
      void get().refreshBudget();
    },

    setConfig(patch) {
      const draft = get().draft;
      if (!draft) return;
      const config = { ...draft.config };
      for (const [key, value] of Object.entries(patch)) {
        if (value === undefined) delete config[key];
        else config[key] = value;
      }
      set({ draft: { ...draft, config } });
      void get().refreshBudget();
    },

    async refreshBudget() {
      const { project, draft, trainingDraft } = get();
      if (!draft || !project) return;
      const ticket = ++budgetTicket;
      // the memory estimate is for the settings the next run will use
      const training = { ...project.training, ...trainingDraft } as {
        batchSize?: number;
        maxSeqLen?: number;
      };
      const budget = await get().request('budget', 'budget.compute', {
        modelDir: project.modelDir,
        method: draft.method,
        config: draft.config,
        batchSize: training.batchSize ?? 4,
        seqLen: training.maxSeqLen ?? 128,
        task: project.task,
      });
      // answers to older drafts arrive late when typing fast; only the newest counts
      if (ticket === budgetTicket) set({ budget });
    },

    async compareMethods() {
      const { project, draft, methods } = get();
      if (!draft || !project) return;
      const candidates = methods.map((m) => {
        if (m.name === draft.method) return { method: m.name, config: draft.config };
        const config: Record<string, unknown> = { ...m.defaults };
        for (const key of TARGET_FIELDS) if (key in draft.config) config[key] = draft.config[key];
        return { method: m.name, config };
      });
      const comparison = await get().request('compare', 'budget.compare', {
        modelDir: project.modelDir,
        candidates,
        task: project.task,
      });
      set({ comparison });
    },

    async saveAdapter() {
      const { project, draft } = get();
      if (!project || !draft) return;
      const updated = await get().request('adapter', 'projects.update', {
        dir: project.dir,
        method: draft.method,
        methodConfig: draft.config,
      });
      if (updated) set({ project: updated });
    },
  };
};
