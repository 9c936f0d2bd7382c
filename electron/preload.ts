/**
 * The preload: the renderer's only door to the engine. It exposes one typed API (the contract) through
 * contextBridge and validates every message both ways with the contract's schemas.
 */
import { contextBridge, type IpcRendererEvent, ipcRenderer } from 'electron';
import {
  DesktopRequestSchema,
  type Input,
  type MenuCommand,
  MenuCommandSchema,
  type MethodId,
  type Output,
  parseEvent,
  parseInput,
  type StudioApi,
  type StudioEvent,
  unwrapReply,
} from '../engine/common/contract.ts';

function desktop(request: unknown): Promise<unknown> {
  return ipcRenderer.invoke('studio:desktop', DesktopRequestSchema.parse(request));
}

const api: StudioApi = {
  transport: 'electron',
  async call<M extends MethodId>(id: M, input: Input<M>): Promise<Output<M>> {
    parseInput(id, input);
    return unwrapReply(id, await ipcRenderer.invoke('studio:call', id, input));
  },
  onEvent(listener: (event: StudioEvent) => void) {
    const handler = (_e: IpcRendererEvent, payload: unknown) => {
      try {
        listener(parseEvent(payload));
      } catch (error) {
        console.error(error);
      }
    };
    ipcRenderer.on('studio:event', handler);
    return () => {
      ipcRenderer.removeListener('studio:event', handler);
    };
  },
  async restartEngine() {
    await ipcRenderer.invoke('studio:restart');
  },
  desktop: {
    openFolder: async (title) => (await desktop({ kind: 'openFolder', title })) as string | null,
    openFile: async (title, extensions) =>
      (await desktop({ kind: 'openFile', title, extensions })) as string | null,
    saveFolder: async (title, defaultPath) =>
      (await desktop({ kind: 'saveFolder', title, defaultPath })) as string | null,
    setTrainingActive: (active) => {
      void desktop({ kind: 'trainingActive', active });
    },
    onMenu(listener: (command: MenuCommand) => void) {
      const handler = (_e: IpcRendererEvent, payload: unknown) => {
        const parsed = MenuCommandSchema.safeParse(payload);
        if (parsed.success) listener(parsed.data);
      };
      ipcRenderer.on('studio:menu', handler);
      return () => {
        ipcRenderer.removeListener('studio:menu', handler);
      };
    },
  },
};

contextBridge.exposeInMainWorld('studio', api);
