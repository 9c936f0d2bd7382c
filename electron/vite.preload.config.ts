import { defineConfig } from 'vite';

/** The preload runs sandboxed, so it is one CommonJS file with zod and the contract bundled in. */
export default defineConfig({});
