import { describe, expect, test } from 'vitest';
import { describeMethods } from '../api/handlers/model.ts';
import { MethodDescriptionSchema, MethodNameSchema } from '../common/contract.ts';
import { METHOD_NAMES } from '../common/method-names.ts';
import { MethodSettings } from '../common/project-schema.ts';
import { getMethod, methodNames, methods } from './registry.ts';

describe('method registry', () => {
  test('the registry holds exactly the names of common/method-names.ts, each under its own name', () => {
    expect(Object.keys(methods)).toEqual([...METHOD_NAMES]);
    expect(methodNames()).toEqual([...METHOD_NAMES]);
    for (const name of methodNames()) expect(getMethod(name).name).toBe(name);
  });

  test('the API contract and the project schema accept exactly the registered methods', () => {
    expect(MethodNameSchema.options).toEqual(methodNames());
    for (const name of methodNames()) {
      expect(MethodSettings.safeParse({ name }).success).toBe(true);
    }
    expect(MethodNameSchema.safeParse('not-a-method').success).toBe(false);
    expect(MethodSettings.safeParse({ name: 'not-a-method' }).success).toBe(false);
  });

  test('methods.list describes every registered method in a shape the contract accepts', async () => {
    const described = await describeMethods();
    expect(described.map((m) => m.name)).toEqual(methodNames());
    for (const m of described) expect(MethodDescriptionSchema.safeParse(m).success).toBe(true);
  });
});
