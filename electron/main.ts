/**
 * The Electron main process: one window, the application menu, native dialogs, recent projects, and the bridge
 * between the sandboxed renderer and the engine host (a utility process running the studio service).
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import {
  app,
  BrowserWindow,
  dialog,
  type IpcMainInvokeEvent,
  ipcMain,
  Menu,
  type MenuItemConstructorOptions,
  protocol,
  session,
  shell,
  utilityProcess,
} from 'electron';
import {
  DesktopRequestSchema,
  isMethodId,
  type MenuCommand,
  parseInput,
  type RecentProject,
  type Reply,
  type StudioEvent,
} from '../engine/common/contract.ts';
import { EngineHost, type HostProcess } from '../engine/common/engine-host.ts';
import type { HostMessage } from '../engine/common/host-protocol.ts';
import { externalLinks } from '../engine/common/links.ts';
import { contentType } from '../engine/common/mime.ts';
import { dialogDefaultPath, isAllowedExternal, isTrustedSender } from './policy.ts';
import { appCsp, loadWindowState, rendererUrl, safeRendererPath, saveWindowState } from './window.ts';

/** Set by @electron-forge/plugin-vite at build time. */
declare const MAIN_WINDOW_VITE_DEV_SERVER_URL: string | undefined;

const SCHEME = 'app';
const isDev =
  typeof MAIN_WINDOW_VITE_DEV_SERVER_URL === 'string' && MAIN_WINDOW_VITE_DEV_SERVER_URL.length > 0;
/** The main bundle is ESM (package.json has "type": "module"), so its folder comes from import.meta. */
const here = import.meta.dirname;
const rendererDir = join(here, '../renderer/main_window');

protocol.registerSchemesAsPrivileged([
  { scheme: SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } },
]);

let mainWindow: BrowserWindow | null = null;
let trainingActive = false;
let quitting = false;

/** The engine runs in a utility process: a crash there leaves the window up and the UI offers a restart. */
function spawnUtilityHost(): HostProcess {
  const child = utilityProcess.fork(join(here, 'host.js'), [], {
    serviceName: 'Adapter Studio engine',
    stdio: 'inherit',
  });
  return {
    send: (message) => child.postMessage(message),
    onMessage: (listener) => child.on('message', (m: unknown) => listener(m as HostMessage)),
    onExit: (listener) => child.on('exit', (code: number) => listener(code, null)),
    kill: () => {
      child.kill();
    },
  };
}

const host = new EngineHost(spawnUtilityHost);

function send(channel: string, payload: unknown): void {
  if (mainWindow && !mainWindow.isDestroyed()) mainWindow.webContents.send(channel, payload);
}

function menuCommand(command: MenuCommand): void {
  send('studio:menu', command);
}

/** Calls are accepted only from the main frame of our window showing our page (electron/policy.ts). */
function trustedSender(event: IpcMainInvokeEvent): boolean {
  const frame = event.senderFrame;
  return isTrustedSender(
    frame
      ? {
          url: frame.url,
          isMainFrame: frame === event.sender.mainFrame,
          fromMainWindow: event.sender === mainWindow?.webContents,
        }
      : null,
    isDev ? (MAIN_WINDOW_VITE_DEV_SERVER_URL as string) : null,
  );
}

async function recentProjects(): Promise<RecentProject[]> {
  const reply = await host.call('projects.recent', {});
  return reply.ok ? (reply.result as RecentProject[]) : [];
}

async function buildMenu(): Promise<void> {
  const recent = await recentProjects();
  const openProject = async () => {
    if (!mainWindow) return;
    const picked = await dialog.showOpenDialog(mainWindow, {
      title: 'Open project',
      properties: ['openDirectory'],
    });
    if (!picked.canceled && picked.filePaths[0])
      menuCommand({ kind: 'openProject', dir: picked.filePaths[0] });
  };
  const viewItems: MenuItemConstructorOptions[] = (
    [
      ['project', 'Project'],
      ['adapter', 'Adapter'],
      ['train', 'Train'],
      ['analysis', 'Analysis'],
      ['runs', 'Runs'],
      ['export', 'Export'],
      ['try', 'Try it'],
    ] as const
  ).map(([view, label], i) => ({
    label,
    accelerator: `Alt+${i + 1}`,
    click: () => menuCommand({ kind: 'view', view }),
  }));
  const template: MenuItemConstructorOptions[] = [
    ...(process.platform === 'darwin' ? [{ role: 'appMenu' as const }] : []),
    {
      label: 'File',
      submenu: [
        { label: 'Open Project…', accelerator: 'CmdOrCtrl+O', click: () => void openProject() },
        { label: 'Open Demo Project', click: () => menuCommand({ kind: 'openDemo' }) },
        {
          label: 'Open Recent',
          submenu:
            recent.length > 0
              ? recent.slice(0, 10).map((r) => ({
                  label: r.name,
                  sublabel: r.dir,
                  click: () => menuCommand({ kind: 'openProject', dir: r.dir }),
                }))
              : [{ label: 'No recent projects', enabled: false }],
        },
        { type: 'separator' },
        process.platform === 'darwin' ? { role: 'close' } : { role: 'quit' },
      ],
    },
    { role: 'editMenu' },
    {
      label: 'View',
      submenu: [
        ...viewItems,
        { type: 'separator' },
        { label: 'Light Theme', click: () => menuCommand({ kind: 'theme', theme: 'light' }) },
        { label: 'Dark Theme', click: () => menuCommand({ kind: 'theme', theme: 'dark' }) },
        { type: 'separator' },
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { role: 'togglefullscreen' },
        ...(isDev ? [{ role: 'toggleDevTools' as const }, { role: 'reload' as const }] : []),
      ],
    },
    { role: 'windowMenu' },
    {
      role: 'help',
      submenu: [
        {
          label: 'About Adapter Studio',
          click: () =>
            void dialog.showMessageBox({
              type: 'info',
              title: 'Adapter Studio',
              message: `Adapter Studio ${app.getVersion()}`,
              detail:
                'Parameter-efficient fine-tuning (LoRA, TLoRA, TinyLoRA, VeRA, LoRA-XS) on TensorFlow.js.',
            }),
        },
      ],
    },
  ];
  Menu.setApplicationMenu(Menu.buildFromTemplate(template));
}

function registerIpc(): void {
  ipcMain.handle('studio:call', async (event, method: unknown, payload: unknown): Promise<Reply> => {
    if (!trustedSender(event))
      return { ok: false, error: { code: 'unauthorized', message: 'call from an untrusted frame' } };
    if (typeof method !== 'string' || !isMethodId(method)) {
      return { ok: false, error: { code: 'not_found', message: `unknown API method "${String(method)}"` } };
    }
    try {
      parseInput(method, payload);
    } catch (error) {
      return { ok: false, error: { code: 'invalid_input', message: (error as Error).message } };
    }
    const reply = await host.call(method, payload);
    if (
      reply.ok &&
      (method === 'projects.open' || method === 'projects.create' || method === 'projects.createDemo')
    ) {
      const dir = (reply.result as { dir: string }).dir;
      app.addRecentDocument(dir);
      void buildMenu();
    }
    return reply;
  });
  ipcMain.handle('studio:restart', async (event) => {
    if (!trustedSender(event)) throw new Error('call from an untrusted frame');
    await host.restart();
  });
  ipcMain.handle('studio:desktop', async (event, request: unknown) => {
    if (!trustedSender(event) || !mainWindow) return null;
    const parsed = DesktopRequestSchema.safeParse(request);
    if (!parsed.success) throw new Error(`invalid desktop request: ${parsed.error.issues[0]?.message}`);
    const r = parsed.data;
    if (r.kind === 'trainingActive') {
      trainingActive = r.active;
      return null;
    }
    const result = await dialog.showOpenDialog(mainWindow, {
      title: r.title,
      defaultPath: r.kind === 'saveFolder' ? dialogDefaultPath(r.defaultPath) : undefined,
      properties:
        r.kind === 'saveFolder'
          ? ['openDirectory', 'createDirectory', 'promptToCreate']
          : r.kind === 'openFile'
            ? ['openFile']
            : ['openDirectory'],
      filters: r.kind === 'openFile' ? [{ name: 'Datasets', extensions: r.extensions }] : undefined,
    });
    return result.canceled ? null : (result.filePaths[0] ?? null);
  });
  host.onEvent((event: StudioEvent) => send('studio:event', event));
}

/** Serves the built renderer on app://studio/ with a strict CSP; nothing outside the renderer folder. */
function registerProtocol(): void {
  protocol.handle(SCHEME, async (request) => {
    const path = safeRendererPath(rendererDir, new URL(request.url).pathname);
    if (!path) return new Response('forbidden', { status: 403 });
    try {
      const body = await fs.readFile(path);
      return new Response(body, {
        headers: {
          'content-type': contentType(path),
          'content-security-policy': appCsp,
          'x-content-type-options': 'nosniff',
        },
      });
    } catch {
      return new Response('not found', { status: 404 });
    }
  });
}

function hardenSession(): void {
  const ses = session.defaultSession;
  // the studio needs no camera, notifications or other permissions
  ses.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
  ses.setPermissionCheckHandler(() => false);
  // no remote content: only our scheme (and the dev server while developing) may load
  ses.webRequest.onBeforeRequest((details, callback) => {
    const url = details.url;
    const allowed =
      url.startsWith(`${SCHEME}://`) ||
      url.startsWith('devtools://') ||
      (isDev && url.startsWith((MAIN_WINDOW_VITE_DEV_SERVER_URL as string).replace(/^http/, 'ws'))) ||
      (isDev && url.startsWith(MAIN_WINDOW_VITE_DEV_SERVER_URL as string));
    callback({ cancel: !allowed });
  });
  if (isDev) {
    ses.webRequest.onHeadersReceived((details, callback) => {
      callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [appCsp] } });
    });
  }
}

async function createWindow(): Promise<void> {
  const statePath = join(app.getPath('userData'), 'window-state.json');
  const state = loadWindowState(statePath);
  const win = new BrowserWindow({
    width: state.width,
    height: state.height,
    x: state.x,
    y: state.y,
    minWidth: 1024,
    minHeight: 680,
    show: false,
    title: 'Adapter Studio',
    icon: join(here, '../../assets/icons/icon.png'),
    webPreferences: {
      preload: join(here, 'preload.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
    },
  });
  mainWindow = win;
  if (state.maximized) win.maximize();
  win.once('ready-to-show', () => win.show());

  const remember = () => saveWindowState(statePath, win);
  win.on('resized', remember);
  win.on('moved', remember);
  win.on('maximize', remember);
  win.on('unmaximize', remember);

  win.webContents.setWindowOpenHandler(({ url }) => {
    // the links the app shows open in the user's browser, never in the app; nothing else opens at all
    if (isAllowedExternal(url, externalLinks)) void shell.openExternal(url);
    return { action: 'deny' };
  });
  win.webContents.on('will-navigate', (event, url) => {
    if (url !== win.webContents.getURL()) event.preventDefault();
  });
  win.webContents.on('will-attach-webview', (event) => event.preventDefault());

  win.on('close', (event) => {
    remember();
    if (!trainingActive || quitting) return;
    event.preventDefault();
    const choice = dialog.showMessageBoxSync(win, {
      type: 'warning',
      buttons: ['Keep training', 'Quit'],
      defaultId: 0,
      cancelId: 0,
      title: 'Training in progress',
      message: 'A training run is in progress.',
      detail: 'Quitting stops it. You can resume it later from its last checkpoint.',
    });
    if (choice === 1) {
      quitting = true;
      win.close();
    }
  });
  win.on('closed', () => {
    mainWindow = null;
  });

  await win.loadURL(rendererUrl(isDev ? (MAIN_WINDOW_VITE_DEV_SERVER_URL as string) : null, SCHEME));
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', () => {
    if (!mainWindow) return;
    if (mainWindow.isMinimized()) mainWindow.restore();
    mainWindow.focus();
  });
  app.on('web-contents-created', (_event, contents) => {
    contents.on('will-navigate', (event, url) => {
      if (
        !url.startsWith(`${SCHEME}://studio/`) &&
        !(isDev && url.startsWith(MAIN_WINDOW_VITE_DEV_SERVER_URL as string))
      ) {
        event.preventDefault();
      }
    });
    contents.setWindowOpenHandler(() => ({ action: 'deny' }));
  });
  app.whenReady().then(async () => {
    hardenSession();
    registerProtocol();
    registerIpc();
    await host.start();
    await buildMenu();
    await createWindow();
  });
  app.on('before-quit', () => {
    quitting = true;
  });
  app.on('window-all-closed', () => {
    void host.close().finally(() => app.quit());
  });
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) void createWindow();
  });
}
