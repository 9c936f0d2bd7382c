import { promises as fs } from 'node:fs';
import { extname } from 'node:path';
import type { TaskKind } from '../models/types.ts';
import { parseDelimited } from './csv.ts';
import { decodeDataset } from './encoding.ts';
import { DataError } from './errors.ts';

export type DataFormat = 'jsonl' | 'csv' | 'tsv';

export interface ChatMessage {
  role: string;
  content: string;
}

/** One example as read from the file, before tokenisation; `line` is 1-based in `file`. */
export type RawExample =
  | { kind: 'prompt-completion'; prompt: string; completion: string; file: string; line: number }
  | { kind: 'chat'; messages: ChatMessage[]; file: string; line: number }
  | { kind: 'text'; text: string; file: string; line: number }
  | {
      kind: 'classification';
      sentence: string;
      sentence2?: string;
      label: string;
      file: string;
      line: number;
    };

export function detectFormat(file: string): DataFormat {
  const ext = extname(file).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson' || ext === '.json') return 'jsonl';
  if (ext === '.csv') return 'csv';
  if (ext === '.tsv') return 'tsv';
  throw new DataError(`cannot tell the format from the extension "${ext}" (use .jsonl, .csv or .tsv)`, file);
}

/** Reads every example of a dataset file for a task; any malformed record is an error naming file and line. */
export async function readExamples(file: string, task: TaskKind, format?: DataFormat): Promise<RawExample[]> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(file);
  } catch (error) {
    throw new DataError(`cannot read the dataset (${(error as NodeJS.ErrnoException).code ?? error})`, file);
  }
  const text = decodeDataset(bytes, file);
  const fmt = format ?? detectFormat(file);
  const examples = fmt === 'jsonl' ? parseJsonl(text, file, task) : parseTable(text, fmt, file, task);
  if (examples.length === 0) throw new DataError('the dataset has no examples', file);
  return examples;
}

function parseJsonl(text: string, file: string, task: TaskKind): RawExample[] {
  const out: RawExample[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      throw new DataError(`malformed JSON (${(error as Error).message})`, file, line);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new DataError('each line must be a JSON object', file, line);
    }
    out.push(
      task === 'seq-cls'
        ? jsonClassification(value as Record<string, unknown>, file, line)
        : jsonCausal(value as Record<string, unknown>, file, line),
    );
  });
  return out;
}

function requireString(obj: Record<string, unknown>, key: string, file: string, line: number): string {
  const v = obj[key];
  if (typeof v !== 'string') {
    throw new DataError(v === undefined ? `missing "${key}"` : `"${key}" must be a string`, file, line);
  }
  return v;
}

function jsonCausal(obj: Record<string, unknown>, file: string, line: number): RawExample {
  if ('messages' in obj) {
    const messages = obj.messages;
    if (!Array.isArray(messages) || messages.length === 0) {
      throw new DataError('"messages" must be a non-empty array of {role, content}', file, line);
    }
    const parsed = messages.map((m, i) => {
      if (
        m === null ||
        typeof m !== 'object' ||
        typeof m.role !== 'string' ||
        typeof m.content !== 'string'
      ) {
        throw new DataError(`messages[${i}] must be an object with string "role" and "content"`, file, line);
      }
      return { role: m.role as string, content: m.content as string };
    });
    if (!parsed.some((m) => m.role === 'assistant')) {
      throw new DataError('"messages" has no assistant turn to train on', file, line);
    }
    return { kind: 'chat', messages: parsed, file, line };
  }
  if ('prompt' in obj || 'completion' in obj) {
    return {
      kind: 'prompt-completion',
      prompt: requireString(obj, 'prompt', file, line),
      completion: requireString(obj, 'completion', file, line),
      file,
      line,
    };
  }
  if ('text' in obj) return { kind: 'text', text: requireString(obj, 'text', file, line), file, line };
  throw new DataError(
    `expected "prompt" + "completion", "messages" or "text"; found keys ${JSON.stringify(Object.keys(obj))}`,
    file,
    line,
  );
}

function labelString(v: unknown, file: string, line: number): string {
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'string' && v.trim() !== '') return v.trim();
  if (typeof v === 'boolean') return String(v);
  throw new DataError(
    v === undefined ? 'missing "label"' : '"label" must be a string or a number',
    file,
    line,
  );
}

function jsonClassification(obj: Record<string, unknown>, file: string, line: number): RawExample {
  const key = 'sentence' in obj ? 'sentence' : 'text' in obj ? 'text' : null;
  if (!key) throw new DataError('missing "sentence" (or "text")', file, line);
  const sentence = requireString(obj, key, file, line);
  const sentence2 = 'sentence2' in obj ? requireString(obj, 'sentence2', file, line) : undefined;
  return {
    kind: 'classification',
    sentence,
    sentence2,
    label: labelString(obj.label, file, line),
    file,
    line,
  };
}

function parseTable(text: string, format: 'csv' | 'tsv', file: string, task: TaskKind): RawExample[] {
  const records = parseDelimited(text, format === 'csv' ? ',' : '\t', file);
  if (records.length === 0) throw new DataError('the dataset has no examples', file);
  const header = records[0].fields.map((h) => h.trim());
  const col = (name: string) => header.indexOf(name);
  const out: RawExample[] = [];
  const rows = records.slice(1);
  if (task === 'seq-cls') {
    const s = col('sentence') >= 0 ? col('sentence') : col('text');
    const s2 = col('sentence2');
    const l = col('label');
    if (s < 0) throw new DataError(`missing column "sentence" in header ${JSON.stringify(header)}`, file, 1);
    if (l < 0) throw new DataError(`missing column "label" in header ${JSON.stringify(header)}`, file, 1);
    for (const r of rows) {
      checkWidth(r.fields, header, file, r.line);
      const label = r.fields[l].trim();
      if (label === '') throw new DataError('missing label', file, r.line);
      out.push({
        kind: 'classification',
        sentence: r.fields[s],
        sentence2: s2 >= 0 ? r.fields[s2] : undefined,
        label,
        file,
        line: r.line,
      });
    }
    return out;
  }
  const p = col('prompt');
  const c = col('completion');
  const t = col('text');
  if (p >= 0 && c >= 0) {
    for (const r of rows) {
      checkWidth(r.fields, header, file, r.line);
      out.push({
        kind: 'prompt-completion',
        prompt: r.fields[p],
        completion: r.fields[c],
        file,
        line: r.line,
      });
    }
    return out;
  }
  if (t >= 0) {
    for (const r of rows) {
      checkWidth(r.fields, header, file, r.line);
      out.push({ kind: 'text', text: r.fields[t], file, line: r.line });
    }
    return out;
  }
  throw new DataError(
    `expected columns "prompt" + "completion" or "text" in header ${JSON.stringify(header)}`,
    file,
    1,
  );
}

function checkWidth(fields: string[], header: string[], file: string, line: number): void {
  if (fields.length !== header.length) {
    throw new DataError(
      `expected ${header.length} fields (${header.join(', ')}), found ${fields.length}`,
      file,
      line,
    );
  }
}
