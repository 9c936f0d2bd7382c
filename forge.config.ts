/**
 * Electron Forge: `npm run package` / `npm run make` build the desktop app with the Vite plugin (main, engine
 * host, preload, renderer), flip its fuses (electron/fuses.ts) and make a .deb and zip archives. See
 * electron/README.md.
 */
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MakerDeb } from '@electron-forge/maker-deb';
import { MakerZIP } from '@electron-forge/maker-zip';
import { FusesPlugin } from '@electron-forge/plugin-fuses';
import { VitePlugin } from '@electron-forge/plugin-vite';
import type { ForgeConfig } from '@electron-forge/shared-types';
import { fuses } from './electron/fuses.ts';
import { runtimeExternals } from './electron/vite.main.config.ts';

/** The externals plus everything they depend on, as folder names under node_modules. */
function dependencyClosure(roots: string[], modules = 'node_modules'): string[] {
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    const manifest = join(modules, name, 'package.json');
    if (!existsSync(manifest)) return;
    seen.add(name);
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) visit(dep);
  };
  for (const root of roots) visit(root);
  return [...seen];
}

const config: ForgeConfig = {
  packagerConfig: {
    name: 'Adapter Studio',
    executableName: 'adapter-studio',
    appBundleId: 'org.adapterstudio.app',
    icon: 'assets/icons/icon',
    asar: { unpack: '**/*.{node,wasm}' },
    extraResource: ['assets/demo'],
  },
  hooks: {
    // the Vite plugin ships only .vite/; the engine's native and wasm packages must sit next to it
    packageAfterCopy: async (_config, buildPath) => {
      for (const name of dependencyClosure(runtimeExternals.filter((n) => n !== 'tsx'))) {
        cpSync(join('node_modules', name), join(buildPath, 'node_modules', name), {
          recursive: true,
          dereference: true,
        });
      }
    },
  },
  makers: [
    new MakerZIP({}, ['darwin', 'linux', 'win32']),
    new MakerDeb({
      options: {
        name: 'adapter-studio',
        productName: 'Adapter Studio',
        icon: 'assets/icons/icon.png',
        categories: ['Development', 'Science'],
        bin: 'adapter-studio',
      },
    }),
  ],
  plugins: [
    new VitePlugin({
      build: [
        { entry: 'electron/main.ts', config: 'electron/vite.main.config.ts', target: 'main' },
        { entry: 'engine/api/host.ts', config: 'electron/vite.host.config.ts', target: 'main' },
        { entry: 'electron/preload.ts', config: 'electron/vite.preload.config.ts', target: 'preload' },
      ],
      renderer: [{ name: 'main_window', config: 'electron/vite.renderer.config.ts' }],
    }),
    new FusesPlugin(fuses),
  ],
};

export default config;
