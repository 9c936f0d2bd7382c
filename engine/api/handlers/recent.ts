import { promises as fs } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { type RecentProject, RecentProjectSchema } from '../../common/contract.ts';
import { writeJsonAtomic } from '../../io/atomic.ts';

const MAX_RECENT = 12;

export function configDirOf(configDir?: string): string {
  return configDir ?? process.env.STUDIO_CONFIG_DIR ?? join(homedir(), '.config', 'adapter-studio');
}

/** Recent projects, newest first; a damaged file reads as empty (it only holds shortcuts). */
export async function readRecent(configDir?: string): Promise<RecentProject[]> {
  try {
    const raw = JSON.parse(await fs.readFile(join(configDirOf(configDir), 'recent.json'), 'utf8'));
    const parsed = z.array(RecentProjectSchema).safeParse(raw);
    return parsed.success ? parsed.data : [];
  } catch {
    return [];
  }
}

export async function rememberProject(
  configDir: string | undefined,
  dir: string,
  name: string,
): Promise<void> {
  const list = (await readRecent(configDir)).filter((r) => r.dir !== dir);
  list.unshift({ dir, name, openedAt: new Date().toISOString() });
  await writeJsonAtomic(join(configDirOf(configDir), 'recent.json'), list.slice(0, MAX_RECENT));
}
