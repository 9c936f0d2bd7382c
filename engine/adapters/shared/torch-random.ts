/**
 * PyTorch's CPU generator (`torch.Generator().manual_seed(s)`): MT19937 with `init_genrand`, and the
 * float32 `uniform_` / `normal_` transforms of ATen (`TransformationHelper.h`, CPU `normal_fill`). VeRA and
 * TinyLoRA draw their frozen projections this way, so regenerating them here gives PEFT's matrices:
 * bit-exact for `uniform_` (barring an FMA-contracted build), and for `normal` up to the last-bit rounding
 * of log/sin/cos (PyTorch's AVX2 path uses its own vectorised transcendental functions).
 */
export class TorchGenerator {
  private readonly mt = new Uint32Array(624);
  private index = 624;

  constructor(seed: number) {
    // manual_seed takes a 64-bit seed; init_genrand uses its low 32 bits.
    this.mt[0] = Number(BigInt.asUintN(32, BigInt(seed)));
    for (let i = 1; i < 624; i++) {
      const prev = this.mt[i - 1];
      this.mt[i] = (Math.imul(1812433253, prev ^ (prev >>> 30)) + i) >>> 0;
    }
  }

  /** The next raw 32-bit output (`generator->random()`). */
  nextUint32(): number {
    if (this.index >= 624) this.twist();
    let y = this.mt[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private twist(): void {
    const mt = this.mt;
    for (let i = 0; i < 624; i++) {
      const y = (mt[i] & 0x80000000) | (mt[(i + 1) % 624] & 0x7fffffff);
      mt[i] = mt[(i + 397) % 624] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    this.index = 0;
  }

  /** One float32 draw of `uniform_real_distribution<float>(from, to)`: 24 random bits, float arithmetic. */
  uniformFloat(from: number, to: number): number {
    const f = Math.fround;
    const x = f((this.nextUint32() & 0xffffff) * 2 ** -24);
    return f(f(x * f(f(to) - f(from))) + f(from));
  }

  /** `tensor.uniform_(from, to, generator=g)` on a float32 tensor of `n` elements (serial, in element order). */
  uniform(n: number, from: number, to: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniformFloat(from, to);
    return out;
  }

  /**
   * `torch.normal(mean, std, size, generator=g)` in float32, PyTorch's `normal_fill` path (numel ≥ 16):
   * all uniforms first, Box–Muller in blocks of 16, and a fresh block of 16 for a ragged tail.
   */
  normal(n: number, mean: number, std: number): Float32Array {
    if (n < 16) {
      throw new Error(`TorchGenerator.normal: PyTorch draws fewer than 16 normals another way (got ${n})`);
    }
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = this.uniformFloat(0, 1);
    for (let i = 0; i + 16 <= n; i += 16) normalFill16(data, i, mean, std);
    if (n % 16 !== 0) {
      const start = n - 16;
      for (let i = 0; i < 16; i++) data[start + i] = this.uniformFloat(0, 1);
      normalFill16(data, start, mean, std);
    }
    return data;
  }
}

function normalFill16(data: Float32Array, start: number, mean: number, std: number): void {
  const f = Math.fround;
  for (let j = 0; j < 8; j++) {
    const u1 = f(1 - data[start + j]);
    const u2 = data[start + j + 8];
    const radius = f(Math.sqrt(f(-2 * f(Math.log(u1)))));
    const theta = f(2 * Math.PI * u2);
    data[start + j] = f(f(f(radius * f(Math.cos(theta))) * f(std)) + f(mean));
    data[start + j + 8] = f(f(f(radius * f(Math.sin(theta))) * f(std)) + f(mean));
  }
}
