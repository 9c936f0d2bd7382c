import type { StudioEvent } from '../../../engine/common/contract.ts';

/** How long live training events wait to be drawn together: a fast run emits dozens of steps a second. */
export const EVENT_BATCH_MS = 150;

/**
 * Collects engine events and hands them over in batches: training steps wait up to `delayMs`, so the page
 * draws a fast run a few times a second instead of once per step; any other event (a state change, a dead
 * engine) goes out at once, after the steps before it, so order is kept.
 */
export function eventBatcher(deliver: (events: StudioEvent[]) => void, delayMs = EVENT_BATCH_MS) {
  let queue: StudioEvent[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (queue.length === 0) return;
    const batch = queue;
    queue = [];
    deliver(batch);
  };
  return {
    push(event: StudioEvent) {
      queue.push(event);
      if (event.type !== 'run.event') flush();
      else timer ??= setTimeout(flush, delayMs);
    },
    dispose() {
      if (timer) clearTimeout(timer);
      timer = null;
      queue = [];
    },
  };
}
