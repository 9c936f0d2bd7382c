import { defineConfig } from 'vite';
import { copyBundledEngineFiles, runtimeExternals } from './vite.main.config.ts';

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
        copyBundledEngineFiles('.', options.dir ?? '.vite/build');
      },
    },
  ],
});
