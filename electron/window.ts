import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize, sep } from 'node:path';
import type { BrowserWindow } from 'electron';

/**
 * The renderer's Content-Security-Policy in the desktop app: only bundled scripts, no remote anything, no
 * network (the renderer reaches the engine through the preload bridge alone). Inline styles stay allowed
 * because charts set style attributes.
 */
export const appCsp = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export interface WindowState {
  width: number;
  height: number;
  x?: number;
  y?: number;
  maximized: boolean;
}

export const defaultWindowState: WindowState = { width: 1280, height: 800, maximized: false };

/** Reads the remembered window bounds; anything unreadable or implausible falls back to 1280×800. */
export function loadWindowState(path: string): WindowState {
  try {
    const raw = JSON.parse(readFileSync(path, 'utf8')) as Partial<WindowState>;
    const ok = (v: unknown, min: number) => typeof v === 'number' && Number.isFinite(v) && v >= min;
    if (!ok(raw.width, 400) || !ok(raw.height, 300)) return { ...defaultWindowState };
    return {
      width: raw.width as number,
      height: raw.height as number,
      x: ok(raw.x, -10000) ? raw.x : undefined,
      y: ok(raw.y, -10000) ? raw.y : undefined,
      maximized: raw.maximized === true,
    };
  } catch {
    return { ...defaultWindowState };
  }
}

export function saveWindowState(path: string, win: BrowserWindow): void {
  if (win.isDestroyed()) return;
  const bounds = win.getNormalBounds();
  const state: WindowState = { ...bounds, maximized: win.isMaximized() };
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, JSON.stringify(state));
  } catch {
    // losing the window size is harmless; never block closing on it
  }
}

/** The page to load: the vite dev server while developing, else the bundled renderer on our own scheme. */
export function rendererUrl(devServer: string | null, scheme: string): string {
  return devServer ? devServer : `${scheme}://studio/index.html`;
}

/** Maps a request path to a file inside the renderer folder, or null when it would leave it. */
export function safeRendererPath(root: string, pathname: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  const base = normalize(root);
  const file = normalize(join(base, decoded === '/' || decoded === '' ? 'index.html' : decoded));
  return file.startsWith(base.endsWith(sep) ? base : base + sep) ? file : null;
}
