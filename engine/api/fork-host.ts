import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { HostProcess } from '../common/engine-host.ts';
import type { HostMessage } from '../common/host-protocol.ts';

/** The host entry point: registers tsx (as bin/studio.mjs does) since there is no build step outside Electron. */
export const hostEntry = fileURLToPath(new URL('./host-entry.mjs', import.meta.url));

/** Starts the engine host as a Node child process (browser mode, tests). */
export function forkHost(env: NodeJS.ProcessEnv = process.env): HostProcess {
  const child = fork(hostEntry, [], {
    execArgv: process.execArgv.filter((a) => !a.startsWith('--inspect')),
    env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  return {
    send: (message) => {
      if (child.connected) child.send(message);
    },
    onMessage: (listener) => child.on('message', (m) => listener(m as HostMessage)),
    onExit: (listener) => child.on('exit', (code, signal) => listener(code, signal)),
    kill: () => child.kill(),
  };
}
