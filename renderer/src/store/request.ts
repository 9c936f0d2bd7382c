import type { RequestSlice, Slice } from './types.ts';

export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export const requestSlice: Slice<RequestSlice> = (set, _get, { api }) => ({
  busy: {},
  errors: {},
  async request(area, id, input) {
    set((s) => ({ busy: { ...s.busy, [area]: true }, errors: { ...s.errors, [area]: undefined } }));
    try {
      return await api.call(id, input);
    } catch (error) {
      set((s) => ({ errors: { ...s.errors, [area]: message(error) } }));
      return null;
    } finally {
      set((s) => ({ busy: { ...s.busy, [area]: false } }));
    }
  },
  clearError: (area) => set((s) => ({ errors: { ...s.errors, [area]: undefined } })),
});
