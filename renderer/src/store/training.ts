import type { Slice, TrainingSlice } from './types.ts';

/** Settings the budget's memory estimate depends on. */
const BUDGET_KEYS = ['batchSize', 'maxSeqLen'];

export const trainingSlice: Slice<TrainingSlice> = (set, get) => ({
  trainingFields: [],
  trainingGroups: [],
  trainingDraft: {},

  async loadTrainingFields() {
    const described = await get().request('app', 'training.describe', {});
    if (described) set({ trainingFields: described.fields, trainingGroups: described.groups });
  },

  setTraining(patch) {
    const draft = { ...get().trainingDraft };
    for (const [key, value] of Object.entries(patch)) {
      if (value === undefined) delete draft[key];
      else draft[key] = value;
    }
    set({ trainingDraft: draft });
    if (Object.keys(patch).some((k) => BUDGET_KEYS.includes(k))) void get().refreshBudget();
  },

  async saveTraining() {
    const { project, trainingDraft } = get();
    if (!project || Object.keys(trainingDraft).length === 0) return;
    const updated = await get().request('training', 'projects.update', {
      dir: project.dir,
      training: trainingDraft,
    });
    if (updated) {
      set({ project: updated, trainingDraft: {} });
      get().resetForm('training');
    }
  },
});
