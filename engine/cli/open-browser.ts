import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return null;
}

/** The command that opens a URL in the user's browser, or null when this machine has none (headless). */
export function browserCommand(platform = process.platform, env = process.env): string[] | null {
  if (platform === 'darwin') return ['open'];
  if (platform === 'win32') return ['cmd', '/c', 'start', '""'];
  if (!env.DISPLAY && !env.WAYLAND_DISPLAY) return null;
  if (env.BROWSER) return [env.BROWSER];
  for (const name of ['xdg-open', 'sensible-browser', 'x-www-browser']) {
    const found = onPath(name);
    if (found) return [found];
  }
  return null;
}

/** Opens `url` in a browser; returns false when none could be started. */
export function openBrowser(url: string): boolean {
  const command = browserCommand();
  if (!command) return false;
  try {
    const child = spawn(command[0], [...command.slice(1), url], { detached: true, stdio: 'ignore' });
    child.on('error', () => {});
    child.unref();
    return true;
  } catch {
    return false;
  }
}
