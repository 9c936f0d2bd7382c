/**
 * The engine's one seeded PRNG for data order, sampling and test data: mulberry32, a 32-bit generator whose
 * stream depends only on the seed, so the same seed gives the same numbers on every platform. Adapter
 * initialisation that must reproduce PyTorch's or PEFT's numbers uses their own generators instead.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
