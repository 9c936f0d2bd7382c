import type { ProjectSummary } from '../../../engine/api/contract.ts';
import { isActive } from './runs.ts';
import type { GetState, ProjectSlice, SetState, Slice } from './types.ts';

/** Makes an opened project the current one: its adapter draft, runs, model, preview and budget. */
async function adoptProject(set: SetState, get: GetState, project: ProjectSummary): Promise<void> {
  const method = project.method;
  const described = get().methods.find((m) => m.name === method);
  const config = { ...(described?.defaults ?? {}), ...project.methodConfig };
  const live = project.runs.find((r) => isActive(r));
  set({
    project,
    runs: project.runs,
    draft: { method, config },
    model: null,
    preview: null,
    budget: null,
    comparison: null,
    runComparison: null,
    selectedRun: live?.dir ?? project.runs[0]?.dir ?? null,
    view: live ? 'train' : get().view,
  });
  const { request } = get();
  const tasks: Promise<unknown>[] = [
    get().loadPreview(),
    get().refreshBudget(),
    request('model', 'model.inspect', { modelDir: project.modelDir }).then((model) => set({ model })),
  ];
  const selected = get().selectedRun;
  if (selected) tasks.push(get().selectRun(selected));
  await Promise.all(tasks);
  const recent = await request('recent', 'projects.recent', {});
  if (recent) set({ recent });
}

export const projectSlice: Slice<ProjectSlice> = (set, get) => ({
  project: null,
  model: null,
  preview: null,

  async openProject(dir) {
    const project = await get().request('project', 'projects.open', { dir });
    if (project) await adoptProject(set, get, project);
  },
  async createProject(input) {
    const project = await get().request('project', 'projects.create', input);
    if (project) await adoptProject(set, get, project);
  },
  async openDemo(dir) {
    const project = await get().request('project', 'projects.createDemo', dir ? { dir } : {});
    if (project) await adoptProject(set, get, project);
  },
  async loadPreview() {
    const project = get().project;
    if (!project) return;
    const preview = await get().request('preview', 'data.preview', { projectDir: project.dir, count: 6 });
    set({ preview });
  },
});
