import type { EncodedExample, TextTokenizer } from './tokenize.ts';

export interface PreviewToken {
  id: number;
  text: string;
  /** True when the token is a loss target. */
  trained: boolean;
}

export interface PreviewExample {
  file: string;
  line: number;
  tokens: PreviewToken[];
  label?: number;
  labelName?: string;
  truncated: boolean;
}

/** The first `n` examples as the model sees them: each token id with its text and whether it is trained. */
export function previewExamples(
  examples: EncodedExample[],
  tokenizer: TextTokenizer,
  n: number,
  labels?: readonly string[],
): PreviewExample[] {
  return examples.slice(0, n).map((e) => ({
    file: e.file,
    line: e.line,
    tokens: e.inputIds.map((id, t) => ({ id, text: tokenizer.decode([id]), trained: e.lossMask[t] > 0 })),
    label: e.label,
    labelName: e.label !== undefined && labels ? labels[e.label] : undefined,
    truncated: e.truncated,
  }));
}

/** Plain-text rendering: trained spans inside ⟦ ⟧ (or coloured on a terminal). */
export function formatPreview(example: PreviewExample, color: boolean): string {
  const open = color ? '\x1b[32m' : '⟦';
  const close = color ? '\x1b[0m' : '⟧';
  let text = '';
  let inside = false;
  for (const t of example.tokens) {
    if (t.trained !== inside) {
      text += t.trained ? open : close;
      inside = t.trained;
    }
    text += t.text;
  }
  if (inside) text += close;
  const head = `${example.file}:${example.line}  ${example.tokens.length} tokens${example.truncated ? ' (truncated)' : ''}`;
  const label =
    example.label !== undefined ? `\nlabel: ${example.labelName ?? example.label} (id ${example.label})` : '';
  const ids = `ids: ${example.tokens.map((t) => (t.trained ? `${t.id}*` : `${t.id}`)).join(' ')}`;
  return `${head}${label}\n${text}\n${ids}`;
}
