import { describe, expect, test } from 'vitest';
import { deriveSeed, kaimingUniformBound, Rng } from './random.ts';

describe('Rng', () => {
  test('reproducible per seed, different across seeds, restorable from its state', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const seq = Array.from({ length: 5 }, () => a.nextUint32());
    expect(Array.from({ length: 5 }, () => b.nextUint32())).toEqual(seq);
    expect(new Rng(43).nextUint32()).not.toBe(seq[0]);
    a.normal();
    const state = a.getState();
    const next = [a.normal(), a.next(), a.normal()];
    const c = new Rng(0);
    c.setState(state);
    expect([c.normal(), c.next(), c.normal()]).toEqual(next);
  });

  test('uniform and normal moments', () => {
    const rng = new Rng(7);
    const n = 20000;
    const u = rng.uniformArray(n, -2, 2);
    const mean = u.reduce((s, v) => s + v, 0) / n;
    const variance = u.reduce((s, v) => s + v * v, 0) / n;
    expect(Math.abs(mean)).toBeLessThan(0.05);
    expect(variance).toBeCloseTo(16 / 12, 1);
    expect(Math.max(...u)).toBeLessThan(2);
    const z = rng.normalArray(n, 1, 3);
    const zm = z.reduce((s, v) => s + v, 0) / n;
    const zv = z.reduce((s, v) => s + (v - zm) ** 2, 0) / n;
    expect(zm).toBeCloseTo(1, 1);
    expect(Math.sqrt(zv)).toBeCloseTo(3, 1);
  });

  test('kaiming_uniform_(a=√5) bound is 1/√fan_in; derived seeds depend on every label', () => {
    expect(kaimingUniformBound(64)).toBeCloseTo(1 / 8, 12);
    expect(kaimingUniformBound(64, 0)).toBeCloseTo(Math.sqrt(6 / 64), 12);
    expect(deriveSeed(1, 'a', 'b')).toBe(deriveSeed(1, 'a', 'b'));
    expect(deriveSeed(1, 'a', 'b')).not.toBe(deriveSeed(2, 'a', 'b'));
    expect(deriveSeed(1, 'ab')).not.toBe(deriveSeed(1, 'a', 'b'));
  });
});
