import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

/** The renderer bundle: served by `studio serve` and loaded by the Electron window (relative paths for file://). */
export default defineConfig({
  root,
  base: './',
  // the app icon is served as /icon.svg
  publicDir: fileURLToPath(new URL('../assets/icons', import.meta.url)),
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('./dist', import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
    sourcemap: false,
  },
});
