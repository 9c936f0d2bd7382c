// Starts the engine host from its TypeScript sources (browser mode and tests; Electron runs a bundled host.js).
import { register } from 'tsx/esm/api';

register();
// tfjs-core's gradients live in its ESM build, which needs the backends' resolve hook before anything imports it
const { ensureGradients } = await import('../backends/gradients.ts');
await ensureGradients();
await import('./host.ts');
