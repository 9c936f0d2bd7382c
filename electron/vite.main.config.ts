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

export default defineConfig({
  build: {
    lib: { entry: 'electron/main.ts', formats: ['es'], fileName: () => 'main.js' },
    rollupOptions: { external: runtimeExternals },
  },
});
