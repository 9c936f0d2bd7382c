import type { ProjectSummary } from '../../../engine/api/contract.ts';
import { isActive } from './runs.ts';
import type { GetState, OpenTarget, ProjectSlice, SetState, Slice } from './types.ts';

/**
 * Makes an opened project the current one: its adapter draft, runs, model, preview and budget. It lands on
 * the target's view and run, else on the Train view of its live run, else on the project.
 */
function adoptProject(set: SetState, get: GetState, project: ProjectSummary, target: OpenTarget = {}): void {
  const method = project.method;
  const described = get().methods.find((m) => m.name === method);
  const config = { ...(described?.defaults ?? {}), ...project.methodConfig };
  const live = project.runs.find((r) => isActive(r));
  const wanted = target.run ? project.runs.find((r) => r.id === target.run) : undefined;
  get().resetForm('adapter');
  get().resetForm('training');
  set((s) => ({
    project,
    trainingDraft: {},
    runs: project.runs,
    draft: { method, config },
    model: null,
    preview: null,
    budget: null,
    comparison: null,
    runComparison: null,
    selectedRun: wanted?.dir ?? live?.dir ?? project.runs[0]?.dir ?? null,
    view: target.view ?? (live ? 'train' : 'project'),
    liveRuns: Object.fromEntries([
      ...Object.entries(s.liveRuns),
      ...project.runs.filter((r) => isActive(r)).map((r) => [r.dir, r] as const),
    ]),
  }));
  if (target.run && !wanted)
    set((s) => ({ errors: { ...s.errors, route: `${project.dir} has no run ${target.run}` } }));
  // the rest loads in the background, each with its own busy flag and in-place error: the views (and the
  // URL) follow the project at once, even while a training run keeps the engine busy
  const { request } = get();
  void get().loadPreview();
  void get().refreshBudget();
  void request('model', 'model.inspect', { modelDir: project.modelDir }).then((model) => set({ model }));
  const selected = get().selectedRun;
  if (selected) void get().selectRun(selected);
  void request('recent', 'projects.recent', {}).then((recent) => recent && set({ recent }));
}

export const projectSlice: Slice<ProjectSlice> = (set, get) => ({
  project: null,
  model: null,
  preview: null,

  async openProject(dir, target) {
    const project = await get().request('project', 'projects.open', { dir });
    if (project) adoptProject(set, get, project, target);
  },
  async createProject(input) {
    const project = await get().request('project', 'projects.create', input);
    if (project) adoptProject(set, get, project);
  },
  async openDemo(dir) {
    const project = await get().request('project', 'projects.createDemo', dir ? { dir } : {});
    if (project) adoptProject(set, get, project);
  },
  async loadPreview() {
    const project = get().project;
    if (!project) return;
    const preview = await get().request('preview', 'data.preview', { projectDir: project.dir, count: 6 });
    set({ preview });
  },
});
