import { defineConfig } from 'vite';
import { runtimeExternals } from './vite.main.config.ts';

/** The engine host (run by `utilityProcess.fork`), an ES module next to main.js. */
export default defineConfig({
  build: {
    lib: { entry: 'engine/api/host.ts', formats: ['es'], fileName: () => 'host.js' },
    rollupOptions: { external: runtimeExternals },
  },
});
