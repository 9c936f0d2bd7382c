import { detachAdapter } from '../../adapters/index.ts';
import { loadRunAdapter, locateCheckpoint, type RunAdapter } from '../../runs/index.ts';
import { type ServiceContext, stateOf } from './context.ts';

interface Cache {
  key: string | null;
  loading: Promise<RunAdapter> | null;
}

function release(adapter: RunAdapter): void {
  detachAdapter(adapter.model, adapter.instance.name);
  adapter.model.dispose();
}

/**
 * The latest checkpoint of a run, loaded once and kept while the user keeps asking about the same one
 * (try-it prompts, eigenvalues): a newer checkpoint or another run replaces it and frees the old model.
 */
export async function runAdapter(ctx: ServiceContext, runDir: string): Promise<RunAdapter> {
  const cache = stateOf<Cache>(ctx, 'loaded', () => {
    const c: Cache = { key: null, loading: null };
    ctx.onDispose(async () => {
      if (c.loading) release(await c.loading.catch(() => null as never));
    });
    return c;
  });
  const { checkpoint } = await locateCheckpoint(runDir);
  if (cache.key === checkpoint && cache.loading) return cache.loading;
  const previous = cache.loading;
  cache.key = checkpoint;
  cache.loading = loadRunAdapter(checkpoint);
  cache.loading.catch(() => {
    if (cache.key === checkpoint) {
      cache.key = null;
      cache.loading = null;
    }
  });
  if (previous) previous.then(release, () => undefined);
  return cache.loading;
}
