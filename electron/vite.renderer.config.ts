import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/** The renderer for Electron: same sources as browser mode; forge picks the output folder (.vite/renderer/main_window). */
export default defineConfig({
  root: fileURLToPath(new URL('../renderer', import.meta.url)),
  publicDir: fileURLToPath(new URL('../assets/icons', import.meta.url)),
  plugins: [react()],
});
