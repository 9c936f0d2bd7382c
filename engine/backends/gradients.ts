import { register } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';

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

/** Makes every tfjs-core gradient available (idempotent). */
export function ensureGradients(): Promise<void> {
  ready ??= (async () => {
    if (tf.getGradient(tf.BatchMatMul)) return;
    register(`data:text/javascript,${encodeURIComponent(resolveHook)}`);
    await import('@tensorflow/tfjs-core/dist/register_all_gradients');
    if (!tf.getGradient(tf.BatchMatMul)) throw new Error('tfjs-core gradients did not register');
  })();
  return ready;
}
