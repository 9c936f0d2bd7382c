import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';

let ready: Promise<string> | null = null;

/** Selects a backend for unit tests once per process and returns its name. */
export function useTestBackend(): Promise<string> {
  ready ??= (async () => {
    await tf.setBackend('cpu');
    await tf.ready();
    return tf.getBackend();
  })();
  return ready;
}
