import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTokenizer } from './tokenizer.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures');

interface Expected {
  tokenize: { text: string; ids: number[]; ids_no_special: number[] }[];
  special_tokens: { bos: number | null; eos: number | null; pad: number | null };
  chat?: { messages: { role: string; content: string }[]; add_generation_prompt: boolean; text: string };
}

const NAMES = ['gpt2', 'llama', 'qwen2', 'mistral', 'bert', 'roberta'];

describe('loadTokenizer on the fixture tokenizers (ids computed by the python generator)', () => {
  for (const name of NAMES) {
    it(name, async () => {
      const exp: Expected = JSON.parse(readFileSync(join(FIXTURES, name, 'expected.json'), 'utf8'));
      const tok = await loadTokenizer(join(FIXTURES, name));
      for (const t of exp.tokenize) {
        expect(tok.encode(t.text)).toEqual(t.ids);
        expect(tok.encode(t.text, { addSpecialTokens: false })).toEqual(t.ids_no_special);
        if (name !== 'bert') expect(tok.decode(t.ids_no_special)).toBe(t.text);
      }
      expect(tok.bosTokenId).toBe(exp.special_tokens.bos);
      expect(tok.eosTokenId).toBe(exp.special_tokens.eos);
      expect(tok.padTokenId).toBe(exp.special_tokens.pad);
      if (exp.chat) {
        const text = tok.applyChatTemplate(exp.chat.messages, {
          addGenerationPrompt: exp.chat.add_generation_prompt,
        });
        expect(text).toBe(exp.chat.text);
      } else {
        expect(tok.chatTemplate).toBeNull();
        expect(() => tok.applyChatTemplate([{ role: 'user', content: 'hi' }])).toThrow(/no chat_template/);
      }
    });
  }

  it('BERT lower-cases and decodes word pieces; encodes sentence pairs', async () => {
    const tok = await loadTokenizer(join(FIXTURES, 'bert'));
    expect(tok.decode(tok.encode('Hello World', { addSpecialTokens: false }))).toBe('hello world');
    const pair = tok.encode('hello', { textPair: 'world' });
    expect(pair[0]).toBe(tok.tokenToId('[CLS]'));
    expect(pair.filter((id) => id === tok.tokenToId('[SEP]'))).toHaveLength(2);
    const typed = tok.encodeWithTypeIds('hello', { textPair: 'world' });
    expect(typed.ids).toEqual(pair);
    expect(typed.typeIds).toEqual([0, 0, 0, 1, 1]);
  });

  it('reads generation_config.json stop ids and a chat_template.jinja file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tok-'));
    try {
      for (const f of ['tokenizer.json', 'tokenizer_config.json', 'config.json']) {
        await writeFile(join(dir, f), readFileSync(join(FIXTURES, 'llama', f)));
      }
      await writeFile(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [297, 295] }));
      await writeFile(join(dir, 'chat_template.jinja'), '{% for m in messages %}<{{ m.role }}>{% endfor %}');
      const tok = await loadTokenizer(dir);
      expect(tok.eosTokenIds).toEqual([297, 295]);
      expect(tok.applyChatTemplate([{ role: 'user', content: 'x' }])).toBe('<user>');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names the missing file', async () => {
    await expect(loadTokenizer(join(FIXTURES, 'does-not-exist'))).rejects.toThrow(
      /tokenizer.json: file not found/,
    );
  });
});
