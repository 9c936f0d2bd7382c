import { createContext, useContext } from 'react';
import { useStore } from 'zustand';
import type { StoreApi } from 'zustand/vanilla';
import type { StudioApi } from '../../engine/common/contract.ts';
import type { Studio } from './store.ts';

export const StoreContext = createContext<StoreApi<Studio> | null>(null);
export const ApiContext = createContext<StudioApi | null>(null);

export function useStudio<T>(selector: (state: Studio) => T): T {
  const store = useContext(StoreContext);
  if (!store) throw new Error('useStudio outside <StoreContext.Provider>');
  return useStore(store, selector);
}

export function useApi(): StudioApi {
  const api = useContext(ApiContext);
  if (!api) throw new Error('useApi outside <ApiContext.Provider>');
  return api;
}
