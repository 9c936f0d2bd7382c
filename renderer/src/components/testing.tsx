import { render } from '@testing-library/react';
import type { ReactElement } from 'react';
import type { StudioApi } from '../../../engine/common/contract.ts';
import { ApiContext, StoreContext } from '../context.ts';
import type { Studio } from '../store/types.ts';
import { createStudioStore } from '../store.ts';

/** Renders a component as the app does (the API and a fresh store around it), starting from `state`. */
export function renderInStudio(ui: ReactElement, api: StudioApi, state: Partial<Studio> = {}) {
  const store = createStudioStore(api);
  store.setState(state);
  render(
    <ApiContext.Provider value={api}>
      <StoreContext.Provider value={store}>{ui}</StoreContext.Provider>
    </ApiContext.Provider>,
  );
  return store;
}
