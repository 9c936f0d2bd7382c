import { createReadStream, existsSync, promises as fs } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, extname, join, resolve, sep } from 'node:path';
import { ApiError, type BrowseEntry, type BrowseListing } from '../../common/contract.ts';
import { detectFormat, readExamples, splitValidation } from '../../data/index.ts';
import { PROJECT_FILE } from '../../project/index.ts';
import { defaultProjectsDir, demoDir } from './app.ts';
import type { Handlers } from './context.ts';
import { weightBytes } from './model.ts';

const DATASET_EXTENSIONS = new Set(['.jsonl', '.ndjson', '.json', '.csv', '.tsv']);
/** Larger files are listed without a row count: counting them would hold up the listing. */
const COUNT_LIMIT_BYTES = 64 * 1024 * 1024;
const MAX_ENTRIES = 1000;

/**
 * Where the folder browser may look: the user's home, the projects folder, the open project's parent, the
 * bundled demo, and any folders in `STUDIO_BROWSE_ROOTS` (a remote box keeps data under /data or /mnt).
 * Paths are compared after resolving `..`; symbolic links the user made inside a root are followed.
 */
export function browseRoots(projectDir?: string): BrowseListing['roots'] {
  const roots: BrowseListing['roots'] = [
    { label: 'Home', path: homedir() },
    { label: 'Projects', path: defaultProjectsDir() },
  ];
  if (projectDir && existsSync(join(projectDir, PROJECT_FILE)))
    roots.push({ label: 'Beside the project', path: dirname(resolve(projectDir)) });
  const demo = demoDir();
  if (demo) roots.push({ label: 'Bundled demo', path: demo });
  for (const extra of (process.env.STUDIO_BROWSE_ROOTS ?? '').split(delimiter))
    if (extra.trim()) roots.push({ label: extra.trim(), path: extra.trim() });
  const seen = new Set<string>();
  return roots
    .map((r) => ({ ...r, path: resolve(r.path) }))
    .filter((r) => !seen.has(r.path) && seen.add(r.path));
}

function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** Non-empty lines (less a CSV/TSV header), streamed. */
async function countRows(path: string, format: string): Promise<number> {
  let rows = 0;
  let inLine = false;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    for (const byte of chunk) {
      if (byte === 10) {
        if (inLine) rows += 1;
        inLine = false;
      } else if (byte !== 13 && byte !== 32 && byte !== 9) inLine = true;
    }
  }
  if (inLine) rows += 1;
  return format === 'jsonl' ? rows : Math.max(0, rows - 1);
}

async function describeModel(dir: string): Promise<Pick<BrowseEntry, 'model' | 'problem'>> {
  try {
    const config = JSON.parse(await fs.readFile(join(dir, 'config.json'), 'utf8')) as {
      architectures?: string[];
      model_type?: string;
    };
    return {
      model: {
        architecture: config.architectures?.[0] ?? config.model_type ?? 'unknown',
        modelType: config.model_type ?? 'unknown',
        sizeBytes: await weightBytes(dir),
      },
    };
  } catch (error) {
    return { problem: `${join(dir, 'config.json')}: ${(error as Error).message}` };
  }
}

async function describeDataset(
  path: string,
  bytes: number,
): Promise<Pick<BrowseEntry, 'dataset' | 'problem'>> {
  const format = detectFormat(path);
  try {
    const rows = bytes <= COUNT_LIMIT_BYTES ? await countRows(path, format) : null;
    return { dataset: { format, rows, bytes } };
  } catch (error) {
    return { dataset: { format, rows: null, bytes }, problem: (error as Error).message };
  }
}

export async function listFolder(dir: string | undefined, projectDir?: string): Promise<BrowseListing> {
  const roots = browseRoots(projectDir);
  const target = resolve(dir ?? roots[0].path);
  // the widest root holding the folder: "up" goes as far as browsing is allowed
  const root = roots.filter((r) => inside(r.path, target)).sort((a, b) => a.path.length - b.path.length)[0];
  if (!root) {
    throw new ApiError(
      'invalid_input',
      `${target} is outside the folders the studio may browse (${roots.map((r) => r.path).join(', ')}); ` +
        'add it to STUDIO_BROWSE_ROOTS to allow it',
    );
  }
  let names: string[];
  try {
    names = (await fs.readdir(target)).filter((n) => !n.startsWith('.')).sort((a, b) => a.localeCompare(b));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ApiError(code === 'ENOENT' ? 'not_found' : 'invalid_input', `cannot list ${target} (${code})`);
  }
  const described = await Promise.all(
    names.slice(0, MAX_ENTRIES).map(async (name): Promise<BrowseEntry | null> => {
      const path = join(target, name);
      const stat = await fs.stat(path).catch(() => null);
      if (!stat) return null;
      if (stat.isDirectory()) {
        if (existsSync(join(path, PROJECT_FILE))) return { name, path, kind: 'project' };
        if (!existsSync(join(path, 'config.json'))) return { name, path, kind: 'dir' };
        return { name, path, kind: 'model', ...(await describeModel(path)) };
      }
      if (stat.isFile() && DATASET_EXTENSIONS.has(extname(name).toLowerCase()))
        return { name, path, kind: 'dataset', ...(await describeDataset(path, stat.size)) };
      return null;
    }),
  );
  const entries = described.filter((e): e is BrowseEntry => e !== null);
  // folders first, then datasets, each by name
  entries.sort((a, b) => Number(a.kind === 'dataset') - Number(b.kind === 'dataset'));
  const up = dirname(target);
  return {
    dir: target,
    parent: target !== root.path && up !== target ? up : null,
    roots,
    entries,
    omitted: names.length - entries.length,
  };
}

export const fileHandlers: Pick<Handlers, 'files.list' | 'files.dataset'> = {
  async 'files.list'({ dir, projectDir }) {
    return listFolder(dir, projectDir);
  },
  async 'files.dataset'({ path, task, valFraction, seed }) {
    const file = resolve(path);
    const examples = await readExamples(file, task);
    const split =
      valFraction > 0
        ? splitValidation(
            examples.map((_, i) => i),
            valFraction,
            seed,
            file,
          )
        : null;
    return {
      path: file,
      format: detectFormat(file),
      task,
      examples: examples.length,
      split: split
        ? { train: split.train.length, validation: split.validation.length, fraction: valFraction, seed }
        : null,
    };
  },
};
