/**
 * The main process's security decisions as pure functions: which links leave the app, which frames may call
 * the engine, which dialog start folders are accepted. main.ts applies them to Electron's events.
 */
import { isAbsolute, normalize } from 'node:path';

/** True for an https link on the allowlist (compared after URL normalisation): nothing else is opened. */
export function isAllowedExternal(url: string, allowlist: readonly string[]): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol !== 'https:' || parsed.username !== '' || parsed.password !== '') return false;
  return allowlist.some((allowed) => new URL(allowed).href === parsed.href);
}

/** What main.ts knows about the frame behind an IPC message. */
export interface SenderFrame {
  url: string;
  /** The top frame of its page (`senderFrame === sender.mainFrame`), not an iframe inside it. */
  isMainFrame: boolean;
  /** The page is the studio's own window. */
  fromMainWindow: boolean;
}

/**
 * Calls are accepted only from the studio window's main frame showing our page: `app://studio/…`, or the Vite
 * dev server's origin while developing. An iframe is refused even when its URL is ours.
 */
export function isTrustedSender(frame: SenderFrame | null, devServer: string | null): boolean {
  if (!frame?.isMainFrame || !frame.fromMainWindow) return false;
  let url: URL;
  try {
    url = new URL(frame.url);
  } catch {
    return false;
  }
  if (devServer) return url.origin === new URL(devServer).origin;
  return url.protocol === 'app:' && url.host === 'studio';
}

/**
 * The start folder the renderer asked the save dialog for, when it is a plain absolute path; anything else
 * (relative, control characters, absurdly long) is dropped and the dialog opens where the system chooses.
 */
export function dialogDefaultPath(path: string | undefined): string | undefined {
  if (path === undefined || path.length === 0 || path.length > 4096) return undefined;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(path) || !isAbsolute(path)) return undefined;
  return normalize(path);
}
