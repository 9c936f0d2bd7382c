/**
 * The adapter methods, one name per folder under engine/adapters/. This module imports nothing, so the API
 * contract and the project schema (which the renderer bundles) derive their enums from it; the registry
 * (`registry.ts`) must hold exactly these names, which the compiler and `registry.test.ts` check.
 */
export const METHOD_NAMES = ['lora', 'tlora', 'tinylora', 'vera', 'loraxs', 'moslora'] as const;

export type MethodName = (typeof METHOD_NAMES)[number];
