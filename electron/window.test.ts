import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultWindowState, loadWindowState, rendererUrl, safeRendererPath } from './window.ts';

describe('electron window helpers', () => {
  it('serves files only from inside the renderer folder', () => {
    expect(safeRendererPath('/app/renderer', '/')).toBe('/app/renderer/index.html');
    expect(safeRendererPath('/app/renderer', '/assets/index.js')).toBe('/app/renderer/assets/index.js');
    expect(safeRendererPath('/app/renderer', '/../main.js')).toBeNull();
    expect(safeRendererPath('/app/renderer', '/%2e%2e/secret')).toBeNull();
    expect(safeRendererPath('/app/renderer', '/a%00b')).toBeNull();
  });

  it('remembers window bounds and falls back to 1280×800 on anything odd', () => {
    const dir = mkdtempSync(join(tmpdir(), 'studio-window-'));
    const file = join(dir, 'state.json');
    expect(loadWindowState(file)).toEqual(defaultWindowState);
    writeFileSync(file, JSON.stringify({ width: 1400, height: 900, x: 10, y: 20, maximized: true }));
    expect(loadWindowState(file)).toEqual({ width: 1400, height: 900, x: 10, y: 20, maximized: true });
    writeFileSync(file, JSON.stringify({ width: 50, height: 900 }));
    expect(loadWindowState(file)).toEqual(defaultWindowState);
    writeFileSync(file, '{broken');
    expect(loadWindowState(file)).toEqual(defaultWindowState);
  });

  it('loads the dev server while developing, else the app scheme', () => {
    expect(rendererUrl('http://localhost:5173', 'app')).toBe('http://localhost:5173');
    expect(rendererUrl(null, 'app')).toBe('app://studio/index.html');
  });
});
