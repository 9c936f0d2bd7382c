import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('.npmrc', () => {
  it('holds only settings npm knows, and keeps install scripts off (onnxruntime-node downloads nothing)', () => {
    const npm = spawnSync('npm', ['config', 'get', 'ignore-scripts'], { cwd: root, encoding: 'utf8' });
    expect(npm.status).toBe(0);
    expect(npm.stderr).not.toMatch(/Unknown project config/);
    // onnxruntime-node's postinstall would fetch extra binaries; with scripts off it never runs
    expect(npm.stdout.trim()).toBe('true');
  });
});
