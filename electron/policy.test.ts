import { FuseV1Options } from '@electron/fuses';
import { describe, expect, it } from 'vitest';
import { externalLinks } from '../engine/common/links.ts';
import { fuses } from './fuses.ts';
import { dialogDefaultPath, isAllowedExternal, isTrustedSender } from './policy.ts';

describe('desktop security decisions', () => {
  it('opens only allowlisted https links', () => {
    const allow = ['https://huggingface.co/docs/peft/index'];
    expect(isAllowedExternal('https://huggingface.co/docs/peft/index', allow)).toBe(true);
    expect(isAllowedExternal('https://HUGGINGFACE.co/docs/peft/index', allow)).toBe(true);
    for (const url of [
      'https://evil.example/',
      'https://huggingface.co/docs/peft/index?next=https://evil.example',
      'https://user:pw@huggingface.co/docs/peft/index',
      'http://huggingface.co/docs/peft/index',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'not a url',
    ]) {
      expect(isAllowedExternal(url, allow), url).toBe(false);
    }
    // what used to open: any https URL
    expect(isAllowedExternal('https://example.com/', externalLinks)).toBe(false);
  });

  it('trusts only the main frame of the studio window showing our page', () => {
    const main = { url: 'app://studio/index.html', isMainFrame: true, fromMainWindow: true };
    expect(isTrustedSender(main, null)).toBe(true);
    expect(isTrustedSender({ ...main, isMainFrame: false }, null)).toBe(false);
    expect(isTrustedSender({ ...main, fromMainWindow: false }, null)).toBe(false);
    expect(isTrustedSender({ ...main, url: 'app://studio.evil/index.html' }, null)).toBe(false);
    expect(isTrustedSender({ ...main, url: 'https://studio/' }, null)).toBe(false);
    expect(isTrustedSender(null, null)).toBe(false);
    const dev = 'http://localhost:5173/';
    expect(isTrustedSender({ ...main, url: 'http://localhost:5173/src/x' }, dev)).toBe(true);
    // a prefix match would let this one in
    expect(isTrustedSender({ ...main, url: 'http://localhost:51730/' }, dev)).toBe(false);
  });

  it('accepts a dialog start folder only as a plain absolute path', () => {
    expect(dialogDefaultPath('/home/me/exports/../exports/run-1')).toBe('/home/me/exports/run-1');
    expect(dialogDefaultPath(undefined)).toBeUndefined();
    for (const path of ['', 'relative/dir', '/tmp/a\u0000b', '/tmp/a\nb', `/${'x'.repeat(5000)}`]) {
      expect(dialogDefaultPath(path), JSON.stringify(path.slice(0, 20))).toBeUndefined();
    }
  });

  it('packages Electron with RunAsNode, NODE_OPTIONS and --inspect off, asar integrity and cookie encryption on', () => {
    expect(fuses[FuseV1Options.RunAsNode]).toBe(false);
    expect(fuses[FuseV1Options.EnableNodeOptionsEnvironmentVariable]).toBe(false);
    expect(fuses[FuseV1Options.EnableNodeCliInspectArguments]).toBe(false);
    expect(fuses[FuseV1Options.EnableEmbeddedAsarIntegrityValidation]).toBe(true);
    expect(fuses[FuseV1Options.OnlyLoadAppFromAsar]).toBe(true);
    expect(fuses[FuseV1Options.EnableCookieEncryption]).toBe(true);
  });
});

describe('packaging config', () => {
  it('flips those fuses when Forge packages the app', async () => {
    const { default: config } = await import('../forge.config.ts');
    const plugin = config.plugins?.find((p) => (p as { name?: string }).name === 'fuses') as
      | { fusesConfig?: unknown }
      | undefined;
    expect(plugin?.fusesConfig).toEqual(fuses);
  });
});
