/**
 * The studio store: zustand slices (one file each under store/) put together. Views read state with
 * `useStudio(selector)` and call actions; no view calls the API itself, so busy and error states live in the
 * request slice. A new feature adds its slice file and one line here.
 */
import { createStore, type StoreApi } from 'zustand/vanilla';
import type { StudioApi } from '../../engine/common/contract.ts';
import { adapterSlice } from './store/adapter.ts';
import { analysisSlice } from './store/analysis.ts';
import { appSlice } from './store/app.ts';
import { exportSlice } from './store/exports.ts';
import { filesSlice } from './store/files.ts';
import { formsSlice } from './store/forms.ts';
import { projectSlice } from './store/project.ts';
import { requestSlice } from './store/request.ts';
import { routeSlice } from './store/route.ts';
import { runsSlice } from './store/runs.ts';
import { trainingSlice } from './store/training.ts';
import { trySlice } from './store/tryit.ts';
import type { SliceContext, Studio } from './store/types.ts';

export { TARGET_FIELDS } from './store/adapter.ts';
export { formErrors } from './store/forms.ts';
export { formatRoute, parseRoute, routeOf } from './store/route.ts';
export { applyTrainEvent, isActive, MAX_LIVE_POINTS } from './store/runs.ts';
export * from './store/types.ts';

export function createStudioStore(api: StudioApi, storage: SliceContext['storage'] = null): StoreApi<Studio> {
  const ctx: SliceContext = { api, storage };
  return createStore<Studio>()((set, get) => ({
    ...requestSlice(set, get, ctx),
    ...appSlice(set, get, ctx),
    ...projectSlice(set, get, ctx),
    ...adapterSlice(set, get, ctx),
    ...runsSlice(set, get, ctx),
    ...analysisSlice(set, get, ctx),
    ...exportSlice(set, get, ctx),
    ...trySlice(set, get, ctx),
    ...routeSlice(set, get, ctx),
    ...formsSlice(set, get, ctx),
    ...trainingSlice(set, get, ctx),
    ...filesSlice(set, get, ctx),
  }));
}
