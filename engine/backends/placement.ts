import * as tf from '@tensorflow/tfjs-core';

/**
 * Gives a freshly loaded frozen weight (never trained) the backend's own copy of it, in the precision the
 * checkpoint stores it in: webgpu keeps bf16/f16 matrices as f16 on the GPU. `storedDtype` is the safetensors
 * dtype (`BF16`, `F16`, `F32`).
 */
export type WeightPlacer = (weight: tf.Tensor, storedDtype: string) => void;

const placers = new Map<string, WeightPlacer>();

/** A backend's placer, used while that backend is active. */
export function registerWeightPlacer(backendName: string, placer: WeightPlacer): void {
  placers.set(backendName, placer);
}

/** Places a frozen weight for the active backend; a no-op where the backend keeps no copy of its own. */
export function placeFrozenWeight(weight: tf.Tensor, storedDtype: string): void {
  placers.get(tf.getBackend())?.(weight, storedDtype);
}
