import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig } from 'vite';
import { bundledEngineFiles, runtimeExternals } from './vite.main.config.ts';

/** The engine host (run by `utilityProcess.fork`), an ES module next to main.js, with the files it reads. */
export default defineConfig({
  build: {
    lib: { entry: 'engine/api/host.ts', formats: ['es'], fileName: () => 'host.js' },
    rollupOptions: { external: runtimeExternals },
  },
  plugins: [
    {
      name: 'engine-files',
      writeBundle(options) {
        for (const { from, to } of bundledEngineFiles)
          cpSync(from, join(options.dir ?? '.vite/build', to), { recursive: true });
      },
    },
  ],
});
