import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { connectApi } from './api/http.ts';
import { ApiContext, StoreContext } from './context.ts';
import { createStudioStore } from './store.ts';
import { bindUrl } from './url.ts';
import './styles.css';

const api = connectApi();
const store = createStudioStore(api, window.localStorage);
const initialTheme = window.localStorage.getItem('studio.theme');
if (!initialTheme && window.matchMedia?.('(prefers-color-scheme: dark)').matches)
  store.getState().setTheme('dark');
bindUrl(store, window);

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <ApiContext.Provider value={api}>
      <StoreContext.Provider value={store}>
        <App />
      </StoreContext.Provider>
    </ApiContext.Provider>
  </StrictMode>,
);
