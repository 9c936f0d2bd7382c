import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataCursor, padBatch } from './batches.ts';
import { parseDelimited } from './csv.ts';
import { DataError } from './errors.ts';
import { readExamples } from './formats.ts';
import { prepareData } from './prepare.ts';
import { formatPreview, previewExamples } from './preview.ts';
import { splitValidation } from './split.ts';
import { WordTokenizer } from './testing.ts';
import { encodeExample } from './tokenize.ts';

const dir = mkdtempSync(join(tmpdir(), 'studio-data-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function dataError(promise: Promise<unknown>): Promise<DataError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(DataError);
    return error as DataError;
  }
  throw new Error('expected a DataError');
}

describe('CSV/TSV parsing', () => {
  it('handles quoted fields with delimiters, doubled quotes and newlines', () => {
    const text = 'sentence,label\n"a, b",1\n"say ""hi""\nthere",0\r\nplain,1\n';
    const records = parseDelimited(text, ',', 'x.csv');
    expect(records.map((r) => r.fields)).toEqual([
      ['sentence', 'label'],
      ['a, b', '1'],
      ['say "hi"\nthere', '0'],
      ['plain', '1'],
    ]);
    expect(records.map((r) => r.line)).toEqual([1, 2, 3, 5]);
  });

  it('reports an unterminated quote with its line', () => {
    expect(() => parseDelimited('a,b\n1,"open\n', ',', 'bad.csv')).toThrow(
      'bad.csv:2: unterminated quoted field',
    );
  });

  it('reads GLUE-style TSV with sentence pairs', async () => {
    const path = file('pairs.tsv', 'sentence\tsentence2\tlabel\nthe cat\ta cat\t1\nthe dog\ta fish\t0\n');
    const examples = await readExamples(path, 'seq-cls');
    expect(examples).toEqual([
      { kind: 'classification', sentence: 'the cat', sentence2: 'a cat', label: '1', file: path, line: 2 },
      { kind: 'classification', sentence: 'the dog', sentence2: 'a fish', label: '0', file: path, line: 3 },
    ]);
  });

  it('names a missing column, a missing label and a short row', async () => {
    const noLabel = file('nolabel.csv', 'sentence,score\nhi,1\n');
    expect((await dataError(readExamples(noLabel, 'seq-cls'))).message).toBe(
      `${noLabel}:1: missing column "label" in header ["sentence","score"]`,
    );
    const emptyLabel = file('emptylabel.csv', 'sentence,label\nhi,1\nho,\n');
    expect((await dataError(readExamples(emptyLabel, 'seq-cls'))).message).toBe(
      `${emptyLabel}:3: missing label`,
    );
    const short = file('short.tsv', 'sentence\tlabel\nhi\n');
    expect((await dataError(readExamples(short, 'seq-cls'))).line).toBe(2);
  });
});

describe('JSONL', () => {
  it('reads prompt/completion, chat and text lines', async () => {
    const path = file(
      'mixed.jsonl',
      [
        '{"prompt":"q","completion":"a"}',
        '',
        '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}',
        '{"text":"free text"}',
      ].join('\n'),
    );
    const examples = await readExamples(path, 'causal-lm');
    expect(examples.map((e) => [e.kind, e.line])).toEqual([
      ['prompt-completion', 1],
      ['chat', 3],
      ['text', 4],
    ]);
  });

  it('names the malformed line', async () => {
    const path = file('bad.jsonl', '{"text":"ok"}\n{"text": "broken"\n');
    const error = await dataError(readExamples(path, 'causal-lm'));
    expect(error.line).toBe(2);
    expect(error.message).toMatch(/bad\.jsonl:2: malformed JSON/);
    const missing = file('missing.jsonl', '{"prompt":"q"}\n');
    expect((await dataError(readExamples(missing, 'causal-lm'))).message).toBe(
      `${missing}:1: missing "completion"`,
    );
    const noLabel = file('nolabel.jsonl', '{"text":"a","label":1}\n{"text":"b"}\n');
    expect((await dataError(readExamples(noLabel, 'seq-cls'))).message).toBe(`${noLabel}:2: missing "label"`);
  });

  it('refuses an empty dataset', async () => {
    const path = file('empty.jsonl', '\n\n');
    expect((await dataError(readExamples(path, 'causal-lm'))).message).toBe(
      `${path}: the dataset has no examples`,
    );
  });
});

describe('text encoding', () => {
  const bytes = (...parts: (string | number[])[]) =>
    Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));
  const binary = (name: string, content: Buffer) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };

  it('accepts and strips a UTF-8 byte-order mark at the start of JSONL, CSV and TSV', async () => {
    const bom = [0xef, 0xbb, 0xbf];
    const jsonl = binary('bom.jsonl', bytes(bom, '{"prompt":"héllo","completion":" 世界 🙂"}\n'));
    expect(await readExamples(jsonl, 'causal-lm')).toMatchObject([
      { prompt: 'héllo', completion: ' 世界 🙂' },
    ]);
    const csv = binary('bom.csv', bytes(bom, 'sentence,label\nyes,pos\n'));
    expect(await readExamples(csv, 'seq-cls')).toMatchObject([{ sentence: 'yes', label: 'pos', line: 2 }]);
    const tsv = binary('bom.tsv', bytes(bom, 'sentence\tlabel\nno\tneg\n'));
    expect(await readExamples(tsv, 'seq-cls')).toMatchObject([{ sentence: 'no', label: 'neg' }]);
  });

  it('refuses invalid UTF-8 with file:line instead of training on replacement characters', async () => {
    const cases: [string, Buffer, number][] = [
      ['latin1.csv', bytes('sentence,label\nok,pos\ncaf', [0xe9], ',neg\n'), 3],
      ['stray.jsonl', bytes('{"text":"a"}\n{"text":"', [0xff], '"}\n'), 2],
      ['overlong.jsonl', bytes('{"text":"', [0xc0, 0xaf], '"}\n'), 1],
      ['surrogate.tsv', bytes('text\tlabel\nx\t1\ny', [0xed, 0xa0, 0x80], '\t0\n'), 3],
      ['cut.jsonl', bytes('{"text":"a"}\n{"text":"b"}\n{"text":"', [0xe4, 0xb8]), 3],
    ];
    for (const [name, content, line] of cases) {
      const path = binary(name, content);
      const task = name.endsWith('.jsonl') ? 'causal-lm' : 'seq-cls';
      const error = await dataError(readExamples(path, task));
      expect(error.message, name).toMatch(
        new RegExp(`^${path}:${line}: invalid UTF-8 \\(byte 0x[0-9a-f]{2} at offset \\d+\\)`),
      );
    }
  });
});

describe('tokenisation', () => {
  it('masks the prompt and trains the completion plus EOS', () => {
    const tok = new WordTokenizer();
    const e = encodeExample(
      { kind: 'prompt-completion', prompt: 'what is two', completion: 'two', file: 'f', line: 1 },
      tok,
      { maxSeqLen: 64, lossOn: 'completion' },
    );
    expect(tok.decode(e.inputIds)).toBe('<s> what is two two </s>');
    expect(e.lossMask).toEqual([0, 0, 0, 0, 1, 1]);
    expect(e.prompt).toBe('what is two');
    expect(e.answer).toBe('two');
    const all = encodeExample(
      { kind: 'prompt-completion', prompt: 'what is two', completion: 'two', file: 'f', line: 1 },
      tok,
      { maxSeqLen: 64, lossOn: 'all' },
    );
    expect(all.lossMask).toEqual([0, 1, 1, 1, 1, 1]);
  });

  it('truncates to maxSeqLen and marks it', () => {
    const e = encodeExample({ kind: 'text', text: 'a b c d e f', file: 'f', line: 1 }, new WordTokenizer(), {
      maxSeqLen: 4,
      lossOn: 'completion',
    });
    expect(e.inputIds.length).toBe(4);
    expect(e.truncated).toBe(true);
  });

  it('trains only the assistant turns of a chat', () => {
    const tok = new WordTokenizer();
    const e = encodeExample(
      {
        kind: 'chat',
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' },
          { role: 'user', content: 'bye' },
          { role: 'assistant', content: 'ciao' },
        ],
        file: 'f',
        line: 1,
      },
      tok,
      { maxSeqLen: 64, lossOn: 'completion' },
    );
    const trained = e.inputIds.filter((_, t) => e.lossMask[t] > 0);
    expect(tok.decode(trained)).toBe('hello <end> ciao <end>');
    expect(e.prompt).toBe('<user> hi <end> <assistant> hello <end> <user> bye <end> <assistant> ');
    expect(e.answer).toBe('ciao');
  });

  it('encodes sentence pairs and maps labels to ids', () => {
    const tok = new WordTokenizer();
    const e = encodeExample(
      { kind: 'classification', sentence: 'a b', sentence2: 'c', label: 'pos', file: 'f', line: 7 },
      tok,
      { maxSeqLen: 64, lossOn: 'completion', labels: ['neg', 'pos'] },
    );
    expect(tok.decode(e.inputIds)).toBe('<s> a b <sep> c');
    expect(e.label).toBe(1);
    expect(() =>
      encodeExample({ kind: 'classification', sentence: 'x', label: 'meh', file: 'v.csv', line: 3 }, tok, {
        maxSeqLen: 8,
        lossOn: 'completion',
        labels: ['neg', 'pos'],
      }),
    ).toThrow('v.csv:3: unknown label "meh" (labels: neg, pos)');
  });
});

describe('batches and splits', () => {
  it('pads to the longest example and counts targets', () => {
    const batch = padBatch(
      [
        { inputIds: [5, 6, 7], lossMask: [0, 1, 1], file: 'f', line: 1, truncated: false },
        { inputIds: [8], lossMask: [0], file: 'f', line: 2, truncated: false },
      ],
      0,
    );
    expect([...batch.inputIds]).toEqual([5, 6, 7, 8, 0, 0]);
    expect([...batch.attentionMask]).toEqual([1, 1, 1, 1, 0, 0]);
    expect([...batch.lossMask]).toEqual([0, 1, 1, 0, 0, 0]);
    expect(batch.targetCount).toBe(2);
    expect(batch.labels).toBeNull();
  });

  it('splits a seeded fraction the same way every time', () => {
    const items = Array.from({ length: 20 }, (_, i) => i);
    const a = splitValidation(items, 0.25, 3, 'f');
    const b = splitValidation(items, 0.25, 3, 'f');
    expect(a).toEqual(b);
    expect(a.validation.length).toBe(5);
    expect([...a.train, ...a.validation].sort((x, y) => x - y)).toEqual(items);
    expect(splitValidation(items, 0.25, 4, 'f').validation).not.toEqual(a.validation);
  });

  it('covers every example once per epoch and resumes from a saved position', () => {
    const cursor = new DataCursor(10, 4, 1, true);
    const epoch0 = [cursor.next(), cursor.next(), cursor.next()];
    expect(epoch0.map((b) => b.indices.length)).toEqual([4, 4, 2]);
    expect(epoch0.flatMap((b) => b.indices).sort((x, y) => x - y)).toEqual([...Array(10).keys()]);
    const saved = { ...cursor.position };
    const after = [cursor.next(), cursor.next()];
    expect(after[0].epoch).toBe(1);
    const resumed = new DataCursor(10, 4, 1, true, saved);
    expect([resumed.next(), resumed.next()]).toEqual(after);
    expect(after[0].indices).not.toEqual(epoch0[0].indices);
  });
});

describe('prepareData and preview', () => {
  it('records label names and holds out a validation fraction', async () => {
    const path = file(
      'cls.csv',
      'sentence,label\n' + Array.from({ length: 10 }, (_, i) => `s${i},${i % 2 ? 'pos' : 'neg'}`).join('\n'),
    );
    const data = await prepareData(
      { task: 'seq-cls', train: path, valFraction: 0.2, seed: 0 },
      new WordTokenizer(),
      {
        maxSeqLen: 16,
        lossOn: 'completion',
      },
    );
    expect(data.labels).toEqual(['neg', 'pos']);
    expect(data.train.length).toBe(8);
    expect(data.validation.length).toBe(2);
  });

  it('shows tokens with the trained part marked', async () => {
    const path = file('pc.jsonl', '{"prompt":"q1","completion":"a1"}\n{"prompt":"q2","completion":"a2"}\n');
    const tok = new WordTokenizer();
    const data = await prepareData({ task: 'causal-lm', train: path, seed: 0 }, tok, {
      maxSeqLen: 16,
      lossOn: 'completion',
    });
    const [first] = previewExamples(data.train, tok, 1);
    expect(first.tokens.map((t) => [t.text, t.trained])).toEqual([
      ['<s>', false],
      ['q1', false],
      ['a1', true],
      ['</s>', true],
    ]);
    expect(formatPreview(first, false)).toContain('<s>q1⟦a1</s>⟧');
  });
});
