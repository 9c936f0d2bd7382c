// Probes for a WebGPU adapter in a process of its own, so Dawn's native warnings land on a stderr the parent
// reads instead of the user's terminal (engine/backends/webgpu-quiet.ts). Prints the probe as JSON.
import { register } from 'tsx/esm/api';

register();
const { probeWebGpu } = await import('./webgpu.ts');
const probe = await probeWebGpu(JSON.parse(process.argv[2] ?? '{}'));
// dawn.node keeps the event loop alive: leave once the result is written
process.stdout.write(JSON.stringify(probe), () => process.exit(0));
