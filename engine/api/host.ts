/**
 * The engine host: a process of its own that runs the studio service, so training never blocks or dies with a
 * UI process. Started with `child_process.fork` (browser mode) or Electron's `utilityProcess.fork` (desktop).
 */

import type { HostMessage, HostRequest } from '../common/host-protocol.ts';
import { createStudioService } from './service.ts';

interface ElectronParentPort {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (e: { data: unknown }) => void): void;
}

interface Port {
  send(message: HostMessage): void;
  onMessage(listener: (message: HostRequest) => void): void;
}

function parentPort(): Port {
  // Electron's utilityProcess exposes `process.parentPort`; child_process.fork gives `process.send`.
  const electronPort = (process as unknown as { parentPort?: ElectronParentPort }).parentPort;
  if (electronPort) {
    return {
      send: (message) => electronPort.postMessage(message),
      onMessage: (listener) => electronPort.on('message', (e) => listener(e.data as HostRequest)),
    };
  }
  if (!process.send) throw new Error('engine host: start me with child_process.fork or utilityProcess.fork');
  return {
    send: (message) => process.send?.(message),
    onMessage: (listener) => process.on('message', (m) => listener(m as HostRequest)),
  };
}

const port = parentPort();
const service = createStudioService();
service.onEvent((event) => port.send({ kind: 'event', event }));
port.onMessage((message) => {
  if (message.kind === 'shutdown') {
    void service.dispose().finally(() => process.exit(0));
    return;
  }
  if (message.kind === 'call') {
    void service
      .call(message.method, message.payload)
      .then((reply) => port.send({ kind: 'reply', id: message.id, reply }));
  }
});
// the parent going away must not leave an orphan engine running
process.on('disconnect', () => void service.dispose().finally(() => process.exit(0)));
port.send({ kind: 'ready', pid: process.pid });
