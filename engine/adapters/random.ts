import * as tf from '@tensorflow/tfjs-core';

/**
 * Seeded PRNG: xoshiro128** (Blackman & Vigna), state seeded through splitmix32. Fast, 128-bit state,
 * passes BigCrush; the state can be saved and restored so a resumed run continues the same stream.
 */
export class Rng {
  private s: Uint32Array;
  private spare: number | null = null;

  constructor(seed: number) {
    this.s = new Uint32Array(4);
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    // An all-zero state would stay zero forever.
    if (this.s.every((v) => v === 0)) this.s[0] = 1;
  }

  /** The generator state, e.g. for a checkpoint. */
  getState(): number[] {
    return [...this.s, this.spare === null ? Number.NaN : this.spare];
  }

  setState(state: readonly number[]): void {
    if (state.length !== 5) throw new Error(`Rng.setState: expected 5 numbers, got ${state.length}`);
    this.s = Uint32Array.from(state.slice(0, 4));
    this.spare = Number.isNaN(state[4]) ? null : state[4];
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A uniform double in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  uniform(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  /** A normal draw (Box–Muller; the second value of each pair is kept for the next call). */
  normal(mean = 0, std = 1): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return mean + std * z;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const rho = Math.sqrt(-2 * Math.log(u));
    this.spare = rho * Math.sin(2 * Math.PI * v);
    return mean + std * rho * Math.cos(2 * Math.PI * v);
  }

  uniformArray(n: number, low: number, high: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform(low, high);
    return out;
  }

  normalArray(n: number, mean = 0, std = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal(mean, std);
    return out;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * A seed derived from a base seed and labels (module name, tensor name), so each tensor's draw does not
 * depend on how many other tensors were drawn before it (adding a target leaves the others unchanged).
 */
export function deriveSeed(seed: number, ...labels: (string | number)[]): number {
  // FNV-1a over the labels, mixed with the seed by murmur3's finaliser.
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (const label of labels) {
    const text = `${String(label)}\u0000`;
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** U(low, high) tensor. */
export function uniformTensor(shape: number[], low: number, high: number, rng: Rng): tf.Tensor {
  return tf.tensor(rng.uniformArray(tf.util.sizeFromShape(shape), low, high), shape, 'float32');
}

/** N(mean, std²) tensor. */
export function normalTensor(shape: number[], rng: Rng, mean = 0, std = 1): tf.Tensor {
  return tf.tensor(rng.normalArray(tf.util.sizeFromShape(shape), mean, std), shape, 'float32');
}

/**
 * The bound of PyTorch's `kaiming_uniform_(t, a)` for a 2-D tensor with fan_in = shape[1] (leaky-ReLU gain
 * √(2/(1+a²)), bound = gain·√(3/fan_in)). With a = √5 (nn.Linear's default) this is 1/√fan_in.
 */
export function kaimingUniformBound(fanIn: number, a = Math.sqrt(5)): number {
  const gain = Math.sqrt(2 / (1 + a * a));
  return gain * Math.sqrt(3 / fanIn);
}

/** PyTorch's `kaiming_uniform_(t, a)` on a 2-D (out × in) tensor, drawn from `rng`. */
export function kaimingUniform(shape: [number, number], rng: Rng, a = Math.sqrt(5)): tf.Tensor2D {
  const bound = kaimingUniformBound(shape[1], a);
  return uniformTensor(shape, -bound, bound, rng) as tf.Tensor2D;
}
