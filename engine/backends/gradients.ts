import { register } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { installLeanBackprop } from './backprop.ts';

/**
 * tfjs-core's Node bundle registers no gradients; they live only in its ESM build (`dist/register_all_gradients`),
 * whose extensionless relative imports Node's resolver refuses (vitest's resolver accepts them). A resolve hook
 * that retries such imports with `.js` makes the ESM build load under tsx as well. Gradient registrations are
 * global to the process, so the ESM copy's registrations serve the Node bundle's engine.
 */
const resolveHook = `
export async function resolve(specifier, context, next) {
  const parent = context.parentURL ?? '';
  if ((specifier.startsWith('./') || specifier.startsWith('../')) && parent.includes('/@tensorflow/tfjs-core/dist/')
      && !/\\.[cm]?js$/.test(specifier)) {
    try { return await next(specifier + '.js', context); } catch {}
  }
  return next(specifier, context);
}`;

let ready: Promise<void> | null = null;
let hooked = false;

/** Imports a module of tfjs-core's ESM build (see the resolve hook above). */
function importEsm<T>(load: () => Promise<T>): Promise<T> {
  if (!hooked) {
    hooked = true;
    register(`data:text/javascript,${encodeURIComponent(resolveHook)}`);
  }
  return load();
}

/** Makes every tfjs-core gradient available and puts the freeing backward pass in place (idempotent). */
export function ensureGradients(): Promise<void> {
  ready ??= (async () => {
    if (!tf.getGradient(tf.BatchMatMul)) {
      await importEsm(() => import('@tensorflow/tfjs-core/dist/register_all_gradients'));
      if (!tf.getGradient(tf.BatchMatMul)) throw new Error('tfjs-core gradients did not register');
    }
    const { getFilteredNodesXToY } = await importEsm(() => import('@tensorflow/tfjs-core/dist/tape'));
    installLeanBackprop(getFilteredNodesXToY as unknown as Parameters<typeof installLeanBackprop>[0]);
  })();
  return ready;
}
