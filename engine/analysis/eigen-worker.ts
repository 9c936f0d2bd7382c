import { parentPort, workerData } from 'node:worker_threads';
import { eigenvalues } from '../linalg/eig.ts';

/** Worker side of an eigenvalue job: progress messages at 1% steps, then the eigenvalues (transferred). */
const { n, data } = workerData as { n: number; data: Float64Array };
const port = parentPort!;
let last = -1;
try {
  const { re, im } = eigenvalues(
    { rows: n, cols: n, data },
    {
      onProgress: (fraction) => {
        if (fraction - last >= 0.01 || fraction === 1) {
          last = fraction;
          port.postMessage({ type: 'progress', fraction });
        }
      },
    },
  );
  port.postMessage({ type: 'done', re, im }, [re.buffer as ArrayBuffer, im.buffer as ArrayBuffer]);
} catch (error) {
  port.postMessage({ type: 'error', message: (error as Error).message });
}
