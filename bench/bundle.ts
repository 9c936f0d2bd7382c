import { dirname, join } from 'node:path';
import { copyBundledEngineFiles, runtimeExternals } from '../electron/vite.main.config.ts';

/**
 * Bundles a bench child to plain JavaScript as the packaged app bundles its engine host (the same packages
 * external): run through tsx, the TypeScript compiler would add some 30 MB to an RSS no user process carries.
 * The bundle sits in node_modules/.cache so its package imports resolve from this repository, with the engine
 * files it reads at run time beside it.
 */
export async function bundleChild(root: string, entry: string): Promise<string> {
  const { build } = await import('esbuild');
  const name = entry.replace(/^.*\//, '').replace(/\.ts$/, '.mjs');
  const outfile = join(root, 'node_modules/.cache/adapter-studio', name);
  await build({
    entryPoints: [join(root, entry)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: runtimeExternals,
    plugins: [
      {
        // tfjs-core's gradients exist only in its ESM build, whose extensionless imports Node refuses: bundled,
        // as Vite bundles them into the app's engine host (its externals match package names exactly)
        name: 'tfjs-core-esm-subpaths',
        setup(b) {
          b.onResolve({ filter: /^@tensorflow\/tfjs-core\/dist\// }, (args) => ({
            path: join(root, 'node_modules', `${args.path}.js`),
          }));
        },
      },
    ],
    logLevel: 'error',
  });
  copyBundledEngineFiles(root, dirname(outfile));
  return outfile;
}
