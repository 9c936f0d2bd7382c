import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ApiError, type ProjectSummary } from '../../common/contract.ts';
import { writeJsonAtomic } from '../../io/atomic.ts';
import { defaultTask, readModelConfig } from '../../models/index.ts';
import {
  createProject,
  openProject,
  PROJECT_FILE,
  type Project,
  parseProjectSettings,
  projectPath,
} from '../../project/index.ts';
import { defaultProjectsDir, demoDataPath, demoDir } from './app.ts';
import type { Handlers, ServiceContext } from './context.ts';
import { rememberProject } from './recent.ts';
import { listRunInfos } from './runs.ts';
import { updateSettings } from './settings.ts';

/**
 * Training settings of the demo project: enough quick steps to watch, pause and resume a run (a fast machine
 * finishes a couple of dozen before a click lands), with evaluation, checkpoints and analysis along the way.
 */
export const demoTraining = {
  maxSteps: 96,
  batchSize: 8,
  maxSeqLen: 64,
  learningRate: 2e-2,
  warmupSteps: 4,
  evalEvery: 48,
  checkpointEvery: 32,
  analysisEvery: 8,
  exactMatchExamples: 4,
  maxNewTokens: 8,
};

export async function summarize(ctx: ServiceContext, project: Project): Promise<ProjectSummary> {
  const s = project.settings;
  return {
    dir: project.dir,
    name: s.name,
    modelDir: projectPath(project.dir, s.model),
    dataPath: projectPath(project.dir, s.data.train),
    task: s.task,
    method: s.method.name,
    methodConfig: s.method.config,
    training: s.training,
    settings: s as unknown as Record<string, unknown>,
    runs: await listRunInfos(ctx, project.dir),
  };
}

/** An opened project is the newest recent one, and the one a fresh window opens. */
async function opened(ctx: ServiceContext, project: Project): Promise<ProjectSummary> {
  await rememberProject(ctx.configDir, project.dir, project.settings.name);
  await updateSettings(ctx.configDir, { lastProject: project.dir });
  return summarize(ctx, project);
}

export const projectHandlers: Pick<
  Handlers,
  'projects.open' | 'projects.create' | 'projects.createDemo' | 'projects.update'
> = {
  async 'projects.open'({ dir }, ctx) {
    return opened(ctx, await openProject(dir));
  },

  async 'projects.create'({ dir, modelDir, dataPath, task, method, settings }, ctx) {
    const extra = settings as {
      name?: string;
      methodConfig?: Record<string, unknown>;
      training?: Record<string, unknown>;
      data?: Record<string, unknown>;
      backend?: string;
    };
    const config = await readModelConfig(modelDir);
    const project = await createProject(resolve(dir), {
      name: extra.name,
      model: resolve(modelDir),
      task: task ?? defaultTask(config),
      data: { ...extra.data, train: resolve(dataPath) },
      method: { name: method, config: extra.methodConfig ?? {} },
      training: extra.training,
      backend: extra.backend,
    });
    return opened(ctx, project);
  },

  async 'projects.createDemo'({ dir }, ctx) {
    const demo = demoDir();
    if (!demo)
      throw new ApiError('not_found', 'the demo model is not installed (assets/demo/model is missing)');
    const train = demoDataPath(demo);
    if (!train) throw new ApiError('not_found', `no demo training data in ${join(demo, 'data')}`);
    const target = resolve(dir ?? join(defaultProjectsDir(), 'demo'));
    // one click twice opens the same demo project again
    if (existsSync(join(target, PROJECT_FILE))) return opened(ctx, await openProject(target));
    const validation = join(demo, 'data', 'validation.jsonl');
    const project = await createProject(target, {
      name: 'Demo: verse → section',
      model: join(demo, 'model'),
      task: 'causal-lm',
      data: existsSync(validation) ? { train, validation } : { train, valFraction: 0.1 },
      method: { name: 'lora', config: { r: 8, loraAlpha: 16 } },
      training: demoTraining,
    });
    return opened(ctx, project);
  },

  async 'projects.update'({ dir, method, methodConfig, training }, ctx) {
    const project = await openProject(dir);
    const file = join(project.dir, PROJECT_FILE);
    const next = structuredClone(project.settings) as unknown as Record<string, unknown> & {
      method: { name: string; config: Record<string, unknown> };
      training: Record<string, unknown>;
    };
    if (method)
      next.method = {
        name: method,
        config: method === project.settings.method.name ? next.method.config : {},
      };
    if (methodConfig) next.method.config = methodConfig;
    if (training) next.training = { ...next.training, ...training };
    // the engine's project schema (and the method's config schema) decide what is valid
    const settings = parseProjectSettings(next, file);
    await writeJsonAtomic(file, settings);
    return summarize(ctx, { dir: project.dir, settings });
  },
};
