import type { Slice, TrySlice } from './types.ts';

export const trySlice: Slice<TrySlice> = (set, get) => ({
  generated: null,
  classified: null,

  async generate(input) {
    const generated = await get().request('try', 'tryit.generate', input);
    if (generated) set({ generated });
  },
  async classify(input) {
    const classified = await get().request('try', 'tryit.classify', input);
    if (classified) set({ classified });
  },
});
