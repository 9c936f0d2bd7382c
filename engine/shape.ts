/**
 * The number of elements of a tensor of this shape (1 for a scalar), as `tf.util.sizeFromShape` counts them,
 * for code that reads shapes from file headers and specs without loading tfjs.
 */
export function shapeSize(shape: readonly number[]): number {
  let size = 1;
  for (const d of shape) size *= d;
  return size;
}
