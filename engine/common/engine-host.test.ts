import { describe, expect, it } from 'vitest';
import type { StudioEvent } from './contract.ts';
import { EngineHost, type HostProcess } from './engine-host.ts';
import type { HostMessage, HostRequest } from './host-protocol.ts';

/** A host process double: replies to calls by echoing the method, and can die on demand. */
function fakeProcess() {
  let onMessage: (m: HostMessage) => void = () => {};
  const exits: ((code: number | null, signal: string | null) => void)[] = [];
  const sent: HostRequest[] = [];
  let answer = true;
  const proc: HostProcess = {
    send(message) {
      sent.push(message);
      if (message.kind === 'call' && answer) {
        queueMicrotask(() =>
          onMessage({ kind: 'reply', id: message.id, reply: { ok: true, result: message.method } }),
        );
      }
    },
    onMessage(listener) {
      onMessage = listener;
      queueMicrotask(() => listener({ kind: 'ready', pid: 42 }));
    },
    onExit(listener) {
      exits.push(listener);
    },
    kill() {
      for (const l of exits) l(null, 'SIGKILL');
    },
  };
  return {
    proc,
    sent,
    emit: (m: HostMessage) => onMessage(m),
    hang: () => {
      answer = false;
    },
    crash: (code: number) => {
      for (const l of exits) l(code, null);
    },
  };
}

describe('EngineHost', () => {
  it('routes calls to the host and replies by id', async () => {
    const fake = fakeProcess();
    const host = new EngineHost(() => fake.proc);
    await host.start();
    expect(await host.call('projects.recent', {})).toEqual({ ok: true, result: 'projects.recent' });
  });

  it('reports a crash: pending calls fail with host_down, listeners learn which runs were live', async () => {
    const fakes = [fakeProcess(), fakeProcess()];
    const fake = fakes[0];
    let spawned = 0;
    const host = new EngineHost(() => fakes[spawned++].proc);
    const events: StudioEvent[] = [];
    host.onEvent((e) => events.push(e));
    await host.start();
    const run = {
      id: 'r1',
      dir: '/p/runs/r1',
      projectDir: '/p',
      status: 'running' as const,
      live: true,
      method: 'lora',
      createdAt: '2026-01-01T00:00:00Z',
      step: 3,
      totalSteps: 10,
      epoch: 0,
      lastLoss: 1,
      lastEvalLoss: null,
      lastCheckpoint: null,
      backend: 'cpu',
      error: null,
      config: {},
    };
    fake.emit({ kind: 'event', event: { type: 'run.state', run } });
    fake.hang();
    const pending = host.call('runs.status', { runDir: run.dir });
    await new Promise((r) => setTimeout(r, 10));
    fake.crash(134);
    const reply = await pending;
    expect(reply).toEqual({
      ok: false,
      error: { code: 'host_down', message: 'the engine process stopped (exit code 134)' },
    });
    const down = events.find((e) => e.type === 'host.state' && e.state === 'down');
    expect(down).toMatchObject({ interruptedRuns: ['/p/runs/r1'] });
    expect(host.hostState().state).toBe('down');
    const after = await host.call('runs.list', { projectDir: '/p' });
    expect(after.ok).toBe(false);
    await host.restart();
    expect(spawned).toBe(2);
    expect(host.hostState().state).toBe('up');
  });
});
