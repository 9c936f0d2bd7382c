import { describe, expect, it } from 'vitest';
import { ApiError, parseEvent, parseInput, unwrapReply } from './contract.ts';

describe('API contract', () => {
  it('names the offending field of a bad request', () => {
    expect(() => parseInput('budget.compute', { modelDir: '', method: 'lora', config: {} })).toThrow(
      /invalid budget.compute request: modelDir: a path is required/,
    );
    expect(() => parseInput('export.run', { runDir: '/r', format: 'onnx', out: '/o' })).toThrow(/format/);
  });

  it('fills defaults of optional settings', () => {
    const input = parseInput('tryit.generate', { runDir: '/r', prompt: 'hi' });
    expect(input.options).toEqual({ mode: 'greedy', maxNewTokens: 32, temperature: 0.8, topK: 40, seed: 0 });
  });

  it('turns an error reply into an ApiError with its code and message', () => {
    const reply = { ok: false, error: { code: 'not_found', message: 'no run at /x' } };
    expect(() => unwrapReply('runs.status', reply)).toThrow(ApiError);
    try {
      unwrapReply('runs.status', reply);
    } catch (error) {
      expect((error as ApiError).code).toBe('not_found');
      expect((error as Error).message).toBe('no run at /x');
    }
  });

  it('rejects a reply that does not match the method output', () => {
    expect(() => unwrapReply('runs.delete', { ok: true, result: { deleted: 3 } })).toThrow(
      /malformed runs.delete reply/,
    );
  });

  it('parses every event kind and refuses unknown ones', () => {
    expect(
      parseEvent({ type: 'host.state', state: 'down', message: 'x', interruptedRuns: ['/r'] }).type,
    ).toBe('host.state');
    expect(() => parseEvent({ type: 'nope' })).toThrow(/malformed event/);
  });
});
