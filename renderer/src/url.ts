import type { StoreApi } from 'zustand/vanilla';
import { formatRoute, parseRoute, routeOf, type Studio } from './store.ts';

/**
 * Keeps the page URL and the store in step: the first route (or the engine's last project) is applied at
 * start, every change of project, view, run or section is written back (a new history entry when the project
 * or view changes), and Back/Forward or an edited URL are followed.
 */
export function bindUrl(store: StoreApi<Studio>, win: Window): () => void {
  let written = win.location.hash;
  let first = true;
  const write = (state: Studio) => {
    if (!state.started) return;
    const hash = formatRoute(routeOf(state));
    if (hash === written) {
      first = false;
      return;
    }
    const before = parseRoute(written);
    const after = parseRoute(hash);
    const url = `${win.location.pathname}${win.location.search}${hash}`;
    const moved = before.view !== after.view || before.project !== after.project;
    // the route the page opened with is completed in place, not added to the history
    if (moved && !first) win.history.pushState(null, '', url);
    else win.history.replaceState(null, '', url);
    written = hash;
    first = false;
  };
  const unsubscribe = store.subscribe(write);
  // Back/Forward fire popstate and, when the hash differs, hashchange too: follow each URL once
  const onPop = () => {
    if (win.location.hash === written) return;
    written = win.location.hash;
    void store.getState().followRoute(parseRoute(written));
  };
  win.addEventListener('popstate', onPop);
  win.addEventListener('hashchange', onPop);
  void store.getState().start(parseRoute(written));
  return () => {
    unsubscribe();
    win.removeEventListener('popstate', onPop);
    win.removeEventListener('hashchange', onPop);
  };
}
