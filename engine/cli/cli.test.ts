import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './testing.ts';

const GPT2 = join(import.meta.dirname, '..', 'models', 'fixtures', 'gpt2');
const commands = [
  'backends',
  'inspect',
  'budget',
  'init',
  'preview-data',
  'train',
  'resume',
  'eval',
  'export',
  'analyze',
  'serve',
  'try',
  'runs',
];

/** A failure is one line on stderr, nothing on stdout, and a non-zero exit code. */
async function fails(argv: string[], pattern: RegExp): Promise<number> {
  const { code, out, err } = await runCli(argv);
  expect(code).not.toBe(0);
  expect(out).toBe('');
  expect(err.split('\n')).toHaveLength(1);
  expect(err).toMatch(pattern);
  return code;
}

describe('studio CLI', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'studio-cli-'));
    await writeFile(join(dir, 'project.json'), '{"name": "broken",');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each(commands)('%s --help prints usage and options and exits 0', async (name) => {
    const { code, out, err } = await runCli([name, '--help']);
    expect(code).toBe(0);
    expect(err).toBe('');
    expect(out.split('\n')[0]).toMatch(new RegExp(`^studio ${name}\\b`));
    expect(out).toMatch(/\n {2}-h, --help +show this help$/);
  });

  it('top-level help lists every command; no command is a usage error', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    for (const name of commands) expect(help.out).toContain(`  ${name} `);
    expect((await runCli([])).code).toBe(2);
    expect(await fails(['bogus'], /unknown command "bogus"/)).toBe(2);
  });

  it.each([
    ['inspect', 'model folder'],
    ['budget', 'model folder'],
    ['init', 'project folder'],
    ['preview-data', 'project folder'],
    ['train', 'project folder'],
    ['resume', 'run folder'],
    ['eval', 'run or checkpoint folder'],
    ['export', 'run or checkpoint folder'],
    ['analyze', 'run or checkpoint folder'],
    ['try', 'run folder'],
    ['runs', 'action \\(list or delete\\)'],
  ])('%s without its positional is a usage error naming it', async (name, what) => {
    expect(await fails([name], new RegExp(`^studio ${name}: missing ${what}`))).toBe(2);
  });

  it('an unknown flag is a usage error that names it and points at --help', async () => {
    const code = await fails(
      ['inspect', GPT2, '--bogus'],
      /^studio inspect: unknown option --bogus \(see `studio inspect --help`\)$/,
    );
    expect(code).toBe(2);
  });

  it('a nonexistent path names the file it looked for', async () => {
    const missing = join(dir, 'nope');
    await fails(['inspect', missing], /nope[/\\]config\.json: file not found/);
    await fails(['train', missing], /nope[/\\]project\.json: not a project folder/);
    await fails(['resume', missing], /nope[/\\]run\.json: not a run folder/);
  });

  it('a corrupt project.json is named with the JSON problem', async () => {
    await fails(['preview-data', dir], /project\.json: malformed JSON/);
  });

  it('an invalid method option (a negative rank) is refused by the config check, not the flag parser', async () => {
    await fails(['budget', GPT2, '--r', '-1'], /invalid lora config: r: r must be at least 1/);
    await fails(['budget', GPT2, '--r', 'abc'], /--r must be a number, got "abc"/);
    await fails(['budget', GPT2, '--method', 'tlora', '--u', '3'], /--u is not an option of tlora/);
  });

  it('--json prints one parseable document', async () => {
    const inspect = await runCli(['inspect', GPT2, '--json']);
    expect(inspect.code).toBe(0);
    expect(JSON.parse(inspect.out)).toMatchObject({ modelType: 'gpt2' });
    const budget = await runCli(['budget', GPT2, '--method', 'vera', '--r', '4', '--json']);
    expect(budget.code).toBe(0);
    expect(JSON.parse(budget.out)).toMatchObject({ method: 'vera', config: { r: 4 } });
  });
});
