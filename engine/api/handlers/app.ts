import { existsSync, readFileSync } from 'node:fs';
import { homedir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BackendReport as EngineBackendReport } from '../../backends/index.ts';
import type { BackendReport } from '../../common/contract.ts';
import { type Handlers, type ServiceContext, stateOf } from './context.ts';
import { readRecent } from './recent.ts';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** The bundled demo: `STUDIO_DEMO_DIR`, the repository's assets/demo, or the packaged app's resources/demo. */
export function demoDir(): string | null {
  const resources = (process as { resourcesPath?: string }).resourcesPath;
  const candidates = [
    process.env.STUDIO_DEMO_DIR,
    join(repoRoot, 'assets', 'demo'),
    resources && join(resources, 'demo'),
  ];
  for (const dir of candidates) if (dir && existsSync(join(dir, 'model', 'config.json'))) return dir;
  return null;
}

export function demoDataPath(dir: string): string | null {
  for (const name of ['train.jsonl', 'train.csv', 'train.tsv']) {
    const path = join(dir, 'data', name);
    if (existsSync(path)) return path;
  }
  return null;
}

export function defaultProjectsDir(): string {
  return process.env.STUDIO_PROJECTS_DIR ?? join(homedir(), 'AdapterStudio');
}

function version(): string {
  try {
    return (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Selects the compute backend once per engine host; training and inference run on it. */
export function engineBackend(ctx: ServiceContext): Promise<EngineBackendReport> {
  return stateOf(ctx, 'backend', () =>
    import('../../backends/index.ts').then(({ selectBackend }) => selectBackend({})),
  );
}

export function toBackendReport(report: EngineBackendReport): BackendReport {
  const chosen = report.matmul ? `${report.chosen} (${report.matmul})` : report.chosen;
  return {
    chosen,
    reason: report.reason,
    candidates: report.candidates.map((c) => ({ name: c.name, available: c.available, detail: c.reason })),
  };
}

export const appHandlers: Pick<Handlers, 'app.info' | 'backend.report' | 'projects.recent'> = {
  async 'app.info'() {
    const demo = demoDir();
    return {
      version: version(),
      demoModelDir: demo ? join(demo, 'model') : null,
      demoDataPath: demo ? demoDataPath(demo) : null,
      defaultProjectsDir: defaultProjectsDir(),
      platform: `${process.platform}-${process.arch}`,
      memoryBytes: totalmem(),
    };
  },
  async 'backend.report'(_input, ctx) {
    return toBackendReport(await engineBackend(ctx));
  },
  async 'projects.recent'(_input, ctx) {
    return readRecent(ctx.configDir);
  },
};
