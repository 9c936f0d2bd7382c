import { forkHost } from '../../api/fork-host.ts';
import { ensureRendererBuilt } from '../../api/http/renderer-dist.ts';
import { startServer } from '../../api/http/server.ts';
import { EngineHost } from '../../common/engine-host.ts';
import { CliError, type Command, numberArg } from '../command.ts';
import { openBrowser } from '../open-browser.ts';

export const command: Command = {
  name: 'serve',
  summary:
    'serve the studio UI and API over HTTP/WebSocket on 127.0.0.1 (browser mode); the URL carries a random token',
  usage: '[--port <n>] [--open] [--api-only]',
  options: {
    port: { type: 'string', description: 'port to listen on (default: a free port)', value: '<n>' },
    open: { type: 'boolean', description: 'open the UI in a browser (prints the URL when there is none)' },
    rebuild: { type: 'boolean', description: 'rebuild the UI (renderer/dist) before serving' },
    'api-only': { type: 'boolean', description: 'serve the API and events only, no UI (for scripts)' },
  },
  async run(args, io) {
    const port = numberArg(args, 'port');
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
      throw new CliError(`option --port must be a port number (0-65535), got ${port}`, 2);
    }
    const staticDir = args.values['api-only']
      ? null
      : await ensureRendererBuilt({ force: Boolean(args.values.rebuild), log: io.err });
    const host = new EngineHost(() => forkHost());
    await host.start();
    let server: Awaited<ReturnType<typeof startServer>>;
    try {
      server = await startServer({ transport: host, port, staticDir });
    } catch (error) {
      await host.close();
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE')
        throw new CliError(`port ${port} is in use; pick another with --port or omit it`);
      throw error;
    }
    io.out(`Adapter Studio is running at ${server.url}`);
    if (args.values.open && !openBrowser(server.url)) {
      io.out('No browser found on this machine: open the URL above in one.');
    }
    io.out('Press Ctrl+C to stop.');
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await server.close();
    await host.close();
    return 0;
  },
};
