import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig } from 'vite';

/**
 * The main process and the engine host, bundled as ES modules (`main.js`, `host.js`: package.json says
 * "type": "module"). Packages with native code or wasm files stay external and ship in node_modules.
 */
export const runtimeExternals = [
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-backend-cpu',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-backend-webgpu',
  '@huggingface/tokenizers',
  '@huggingface/jinja',
  'onnxruntime-node',
  'koffi',
  'webgpu',
  'tsx',
];

/**
 * Engine files read at run time from beside the module that reads them (`new URL(…, import.meta.url)`): a bundle
 * of the engine carries them next to itself. The native backend's C++ kernel sources, compiled once per machine
 * (engine/backends/native/compile.ts).
 */
const bundledEngineFiles = [{ from: 'engine/backends/native/cc', to: 'cc' }];

/** Copies those files from the repository at `root` beside a bundle written to `outDir`. */
export function copyBundledEngineFiles(root: string, outDir: string): void {
  for (const { from, to } of bundledEngineFiles)
    cpSync(join(root, from), join(outDir, to), { recursive: true });
}

export default defineConfig({
  build: {
    lib: { entry: 'electron/main.ts', formats: ['es'], fileName: () => 'main.js' },
    rollupOptions: { external: runtimeExternals },
  },
});
