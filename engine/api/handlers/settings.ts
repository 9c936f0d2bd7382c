import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { type StudioSettings, StudioSettingsSchema } from '../../common/contract.ts';
import { writeJsonAtomic } from '../../io/atomic.ts';
import type { Handlers } from './context.ts';
import { configDirOf } from './recent.ts';

const FILE = 'settings.json';
const defaults: StudioSettings = { lastProject: null };

/** The studio's own settings; a missing or damaged file reads as the defaults (it holds no user data). */
export async function readSettings(configDir?: string): Promise<StudioSettings> {
  try {
    const raw = JSON.parse(await fs.readFile(join(configDirOf(configDir), FILE), 'utf8'));
    const parsed = StudioSettingsSchema.safeParse({ ...defaults, ...raw });
    return parsed.success ? parsed.data : defaults;
  } catch {
    return defaults;
  }
}

export async function updateSettings(
  configDir: string | undefined,
  patch: Partial<StudioSettings>,
): Promise<StudioSettings> {
  const next = { ...(await readSettings(configDir)), ...patch };
  await writeJsonAtomic(join(configDirOf(configDir), FILE), next);
  return next;
}

export const settingsHandlers: Pick<Handlers, 'settings.get' | 'settings.update'> = {
  async 'settings.get'(_input, ctx) {
    return readSettings(ctx.configDir);
  },
  async 'settings.update'(patch, ctx) {
    const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
    return updateSettings(ctx.configDir, defined);
  },
};
