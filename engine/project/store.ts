import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { basename, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import { parseMethodConfig } from '../adapters/index.ts';
import { RunStatusSchema } from '../common/contract.ts';
import { StudioError } from '../common/errors.ts';
import {
  describeIssues,
  PROJECT_FILE,
  PROJECT_SCHEMA_VERSION,
  ProjectSettings,
  type ProjectSettingsInput,
  RunOrigin,
  TrainingSettings,
} from '../common/project-schema.ts';
import { type DataSources, readData } from '../data/prepare.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { readModelConfig } from '../models/index.ts';

/** A problem with a project folder or its project.json; the message names the file. */
export class ProjectError extends StudioError {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super('invalid_input', `${file}: ${message}`);
    this.name = 'ProjectError';
  }
}

export interface Project {
  dir: string;
  settings: ProjectSettings;
}

/** An absolute path for a project-relative one. */
export function projectPath(projectDir: string, path: string): string {
  return isAbsolute(path) ? path : resolve(projectDir, path);
}

/**
 * Paths near the project (inside it or beside it) are stored relative, so the project folder can move with
 * its data; paths further away (a shared model cache) stay absolute.
 */
function relativeTo(projectDir: string, path: string, base: string): string {
  const abs = isAbsolute(path) ? path : resolve(base, path);
  const rel = relative(projectDir, abs) || '.';
  return rel.startsWith(`..${sep}..${sep}`) || rel === `..${sep}..` || isAbsolute(rel) ? abs : rel;
}

/**
 * Validates settings against the schema and the method's own config schema. Upgrades older schema versions
 * or refuses them with the reason; unknown keys are errors.
 */
export function parseProjectSettings(raw: unknown, file: string): ProjectSettings {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new ProjectError(file, 'must be a JSON object');
  const version = (raw as { schemaVersion?: unknown }).schemaVersion;
  if (version === undefined)
    throw new ProjectError(file, `missing "schemaVersion" (current: ${PROJECT_SCHEMA_VERSION})`);
  if (typeof version !== 'number' || !Number.isInteger(version)) {
    throw new ProjectError(file, `"schemaVersion" must be an integer, got ${JSON.stringify(version)}`);
  }
  if (version > PROJECT_SCHEMA_VERSION) {
    throw new ProjectError(
      file,
      `schemaVersion ${version} was written by a newer Adapter Studio (this one reads up to ${PROJECT_SCHEMA_VERSION}); upgrade the studio`,
    );
  }
  if (version < PROJECT_SCHEMA_VERSION) {
    throw new ProjectError(
      file,
      `schemaVersion ${version} is older than any released format (${PROJECT_SCHEMA_VERSION}) and cannot be read`,
    );
  }
  const parsed = ProjectSettings.safeParse(raw);
  if (!parsed.success) throw new ProjectError(file, `invalid project: ${describeIssues(parsed.error)}`);
  const settings = parsed.data;
  try {
    settings.method.config = parseMethodConfig(settings.method.name, settings.method.config);
  } catch (error) {
    throw new ProjectError(file, (error as Error).message);
  }
  return settings;
}

export async function openProject(dir: string): Promise<Project> {
  const file = join(dir, PROJECT_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ProjectError(
      file,
      code === 'ENOENT'
        ? 'not a project folder (no project.json; create one with `studio init`)'
        : `cannot read (${code})`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ProjectError(file, `malformed JSON (${(error as Error).message})`);
  }
  return { dir: resolve(dir), settings: parseProjectSettings(raw, file) };
}

export interface CreateProjectInput extends Omit<ProjectSettingsInput, 'schemaVersion' | 'name'> {
  name?: string;
}

/**
 * Creates a project folder: checks the model folder and reads the data (a malformed file fails here, with its
 * line), records classification label names, and writes project.json with paths relative to the project.
 * Relative input paths are taken from `baseDir` (default: the working directory).
 */
export async function createProject(
  dir: string,
  input: CreateProjectInput,
  options: { baseDir?: string; overwrite?: boolean } = {},
): Promise<Project> {
  const projectDir = resolve(dir);
  const base = options.baseDir ?? process.cwd();
  const file = join(projectDir, PROJECT_FILE);
  if (!options.overwrite) {
    const exists = await fs
      .access(file)
      .then(() => true)
      .catch(() => false);
    if (exists) throw new ProjectError(file, 'a project already exists here');
  }
  const data = { ...input.data };
  data.train = relativeTo(projectDir, data.train, base);
  if (data.validation) data.validation = relativeTo(projectDir, data.validation, base);
  const raw = {
    schemaVersion: PROJECT_SCHEMA_VERSION,
    name: input.name ?? basename(projectDir),
    model: relativeTo(projectDir, input.model, base),
    task: input.task,
    data,
    method: input.method,
    training: input.training ?? {},
    backend: input.backend ?? 'auto',
  };
  const settings = parseProjectSettings(raw, file);
  const modelDir = projectPath(projectDir, settings.model);
  const modelConfig = await readModelConfig(modelDir);
  const read = await readData(projectDataSources(projectDir, settings));
  if (read.labels) {
    settings.data.labels =
      settings.data.labels ??
      headLabels(read.labels, modelConfig, projectPath(projectDir, settings.data.train));
  }
  await fs.mkdir(join(projectDir, 'runs'), { recursive: true });
  await writeJsonAtomic(file, settings);
  return { dir: projectDir, settings };
}

/**
 * Label names for a model that already has a classification head (`*ForSequenceClassification` with
 * `id2label`): the head's order when the data uses its names, all of the head's ids when the data uses numeric
 * ids below its size (e.g. a binary task on a frozen 3-way MNLI head), else the data's own labels when the
 * counts agree. Anything else cannot be trained on that head and is refused here rather than at load time.
 */
function headLabels(dataLabels: string[], config: Record<string, unknown>, dataFile: string): string[] {
  const archs = Array.isArray(config.architectures) ? config.architectures : [];
  const id2label = config.id2label as Record<string, unknown> | undefined;
  if (!archs.some((a) => typeof a === 'string' && a.endsWith('ForSequenceClassification')) || !id2label) {
    return dataLabels;
  }
  const names = Object.entries(id2label)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([, v]) => String(v));
  if (dataLabels.every((l) => names.includes(l))) return names;
  if (dataLabels.every((l) => /^\d+$/.test(l) && Number(l) < names.length))
    return names.map((_, i) => String(i));
  if (dataLabels.length === names.length) return dataLabels;
  throw new ProjectError(
    dataFile,
    `the data has labels ${dataLabels.join(', ')} but the model's classification head has ${names.length} (${names.join(', ')}); use the head's label names or ids 0..${names.length - 1}, or pass labels explicitly`,
  );
}

/** Applies training overrides (validated by the same schema as project.json). */
export function withTrainingOverrides(
  settings: ProjectSettings,
  overrides: Record<string, unknown>,
): ProjectSettings {
  const merged = TrainingSettings.safeParse({ ...settings.training, ...overrides });
  if (!merged.success) throw new Error(`invalid training settings: ${describeIssues(merged.error)}`);
  return { ...settings, training: merged.data };
}

export const RUNS_DIR = 'runs';
export const RUN_FILE = 'run.json';
export const METRICS_FILE = 'metrics.jsonl';

/** A run's status, in the API's words (one vocabulary for run.json, the engine and the app). */
export const RunStatus = RunStatusSchema;
export type RunStatus = z.infer<typeof RunStatus>;

/** Words older run.json files used, read as today's. */
const LEGACY_STATUS: Record<string, RunStatus> = { created: 'pending', finished: 'completed' };

/** `run.json`: the frozen configuration of one run, its status and timings. */
export const RunRecord = z.object({
  schemaVersion: z.literal(1),
  runId: z.string(),
  /** The project settings as they were when the run started (paths relative to the project folder). */
  config: ProjectSettings,
  status: z.preprocess((v) => (typeof v === 'string' ? (LEGACY_STATUS[v] ?? v) : v), RunStatus),
  /** Why the run ended, when it did. */
  reason: z.string().optional(),
  /** Steps this run trains to (0 for an imported adapter not trained here yet). */
  totalSteps: z.number().int().nonnegative(),
  step: z.number().int().nonnegative(),
  backend: z.string(),
  labels: z.array(z.string()).optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  finishedAt: z.string().optional(),
  /** Seconds spent training (wall clock, summed over resumes). */
  trainSeconds: z.number().nonnegative(),
  lastCheckpoint: z.string().nullable(),
  finalMetrics: z.record(z.string(), z.number()).optional(),
  error: z.string().optional(),
  /** Set for runs not trained here: an imported PEFT adapter or an imported run. */
  origin: RunOrigin.optional(),
});
export type RunRecord = z.infer<typeof RunRecord>;

export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${randomBytes(2).toString('hex')}`;
}

export async function writeRunRecord(runDir: string, record: RunRecord): Promise<void> {
  await writeJsonAtomic(join(runDir, RUN_FILE), record);
}

export async function readRunRecord(runDir: string): Promise<RunRecord> {
  const file = join(runDir, RUN_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ProjectError(
      file,
      code === 'ENOENT' ? 'not a run folder (no run.json)' : `cannot read (${(error as Error).message})`,
    );
  }
  const parsed = RunRecord.safeParse(raw);
  if (!parsed.success) throw new ProjectError(file, `invalid run record: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** The project folder of a run folder (`<project>/runs/<id>`). */
export function projectOfRun(runDir: string): string {
  return resolve(runDir, '..', '..');
}

/** Run ids of a project, oldest first. */
export async function listRuns(projectDir: string): Promise<string[]> {
  try {
    const names = await fs.readdir(join(projectDir, RUNS_DIR), { withFileTypes: true });
    return names
      .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
      .map((d) => d.name)
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** Where a project's examples come from, with paths resolved against the project folder. */
export function projectDataSources(projectDir: string, settings: ProjectSettings): DataSources {
  return {
    task: settings.task,
    train: projectPath(projectDir, settings.data.train),
    validation: settings.data.validation ? projectPath(projectDir, settings.data.validation) : undefined,
    valFraction: settings.data.valFraction,
    format: settings.data.format,
    labels: settings.data.labels,
    seed: settings.training.seed,
  };
}
