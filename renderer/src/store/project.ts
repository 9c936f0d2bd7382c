import type { ProjectSummary } from '../../../engine/common/contract.ts';
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

export const projectSlice: Slice<ProjectSlice> = (set, get) => {
  // a deep link followed while the last project still opens: the newest request wins, whichever answers last
  let ticket = 0;
  const open = async (answer: Promise<ProjectSummary | null>, target?: OpenTarget): Promise<void> => {
    const mine = ++ticket;
    const project = await answer;
    if (project && mine === ticket) adoptProject(set, get, project, target);
  };
  return {
    project: null,
    model: null,
    preview: null,

    openProject: (dir, target) => open(get().request('project', 'projects.open', { dir }), target),
    createProject: (input) => open(get().request('project', 'projects.create', input)),
    openDemo: (dir) => open(get().request('project', 'projects.createDemo', dir ? { dir } : {})),
    async loadPreview() {
      const project = get().project;
      if (!project) return;
      const preview = await get().request('preview', 'data.preview', { projectDir: project.dir, count: 6 });
      set({ preview });
    },
  };
};
