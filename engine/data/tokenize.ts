import { DataError } from './errors.ts';
import type { ChatMessage, RawExample } from './formats.ts';
import { labelIdOf } from './labels.ts';

/** What data preparation needs from a tokenizer (`StudioTokenizer` from engine/models satisfies it). */
export interface TextTokenizer {
  encode(text: string, options?: { addSpecialTokens?: boolean; textPair?: string }): number[];
  decode(ids: number[]): string;
  readonly padTokenId: number | null | undefined;
  readonly eosTokenId: number | null | undefined;
  readonly bosTokenId?: number | null | undefined;
  applyChatTemplate?(messages: ChatMessage[], options?: { addGenerationPrompt?: boolean }): string;
}

export type LossOn = 'completion' | 'all';

export interface EncodeOptions {
  maxSeqLen: number;
  /** Causal LM: train on completion tokens only (prompt/completion and chat) or on every token. */
  lossOn: LossOn;
  /** Classification label names in id order. */
  labels?: readonly string[];
}

/** One tokenised example. */
export interface EncodedExample {
  inputIds: number[];
  /** Causal LM: 1 where the token is a prediction target (predicted from the previous position). */
  lossMask: number[];
  /** Classification label id. */
  label?: number;
  /** Where it came from. */
  file: string;
  line: number;
  /** True when tokens past `maxSeqLen` were dropped. */
  truncated: boolean;
  /** For exact-match evaluation: the prompt the model continues (text and the exact ids trained on), and the expected answer. */
  prompt?: string;
  promptIds?: number[];
  answer?: string;
}

interface Segment {
  text: string;
  train: boolean;
}

/** Tokenises raw examples for a task; segments are encoded separately so the mask boundary is exact. */
export function encodeExamples(
  examples: RawExample[],
  tokenizer: TextTokenizer,
  options: EncodeOptions,
): EncodedExample[] {
  return examples.map((e) => encodeExample(e, tokenizer, options));
}

export function encodeExample(
  e: RawExample,
  tokenizer: TextTokenizer,
  options: EncodeOptions,
): EncodedExample {
  if (e.kind === 'classification') {
    if (!options.labels) throw new DataError('classification data needs label names', e.file, e.line);
    const ids =
      e.sentence2 === undefined
        ? tokenizer.encode(e.sentence, { addSpecialTokens: true })
        : tokenizer.encode(e.sentence, { addSpecialTokens: true, textPair: e.sentence2 });
    const truncated = ids.length > options.maxSeqLen;
    const inputIds = ids.slice(0, options.maxSeqLen);
    return {
      inputIds,
      lossMask: inputIds.map(() => 0),
      label: labelIdOf(e, options.labels),
      file: e.file,
      line: e.line,
      truncated,
    };
  }
  const eos = tokenizer.eosTokenId ?? null;
  let segments: Segment[];
  let specialsInText = false;
  let prompt: string | undefined;
  let promptIds: number[] | undefined;
  let answer: string | undefined;
  if (e.kind === 'prompt-completion') {
    segments = [
      { text: e.prompt, train: false },
      { text: e.completion, train: true },
    ];
    prompt = e.prompt;
    answer = e.completion;
  } else if (e.kind === 'text') {
    segments = [{ text: e.text, train: true }];
  } else if (options.lossOn === 'all') {
    segments = [{ text: renderChat(e.messages, tokenizer, e.file, e.line), train: true }];
    specialsInText = true;
  } else {
    segments = chatSegments(e.messages, tokenizer, e.file, e.line);
    specialsInText = true;
    const last = e.messages.length - 1;
    if (e.messages[last].role === 'assistant' && tokenizer.applyChatTemplate) {
      prompt = tokenizer.applyChatTemplate(e.messages.slice(0, last), { addGenerationPrompt: true });
      promptIds = tokenizer.encode(prompt, { addSpecialTokens: false });
      answer = e.messages[last].content;
    }
  }
  const inputIds: number[] = [];
  const lossMask: number[] = [];
  segments.forEach((s, i) => {
    const ids = tokenizer.encode(s.text, { addSpecialTokens: i === 0 && !specialsInText });
    if (i === 0 && e.kind === 'prompt-completion') promptIds = ids;
    for (const id of ids) {
      inputIds.push(id);
      lossMask.push(s.train || options.lossOn === 'all' ? 1 : 0);
    }
  });
  // Plain text and completions end with EOS so the model learns to stop; chat templates close turns themselves.
  if (!specialsInText && eos !== null && inputIds[inputIds.length - 1] !== eos) {
    inputIds.push(eos);
    lossMask.push(1);
  }
  // The first token has no previous position to be predicted from.
  if (lossMask.length > 0) lossMask[0] = 0;
  const truncated = inputIds.length > options.maxSeqLen;
  return {
    inputIds: inputIds.slice(0, options.maxSeqLen),
    lossMask: lossMask.slice(0, options.maxSeqLen),
    file: e.file,
    line: e.line,
    truncated,
    prompt,
    promptIds,
    answer,
  };
}

/**
 * Splits a rendered conversation into turns by rendering growing prefixes: the text each message adds is one
 * segment, trained when the message is the assistant's. Needs a template whose renders extend each other.
 */
function chatSegments(
  messages: ChatMessage[],
  tokenizer: TextTokenizer,
  file: string,
  line: number,
): Segment[] {
  const segments: Segment[] = [];
  let previous = '';
  for (let k = 1; k <= messages.length; k++) {
    const rendered = renderChat(messages.slice(0, k), tokenizer, file, line);
    if (!rendered.startsWith(previous)) {
      throw new DataError(
        'the chat template does not render conversations incrementally, so assistant turns cannot be masked; use prompt/completion data or lossOn "all"',
        file,
        line,
      );
    }
    if (messages[k - 1].role === 'assistant') {
      // The assistant header (the generation prompt) is context, not something to learn.
      const header = renderChat(messages.slice(0, k - 1), tokenizer, file, line, true);
      if (header.startsWith(previous) && rendered.startsWith(header)) {
        if (header.length > previous.length)
          segments.push({ text: header.slice(previous.length), train: false });
        previous = header;
      }
    }
    const text = rendered.slice(previous.length);
    if (text.length > 0) segments.push({ text, train: messages[k - 1].role === 'assistant' });
    previous = rendered;
  }
  return segments;
}

function renderChat(
  messages: ChatMessage[],
  tokenizer: TextTokenizer,
  file: string,
  line: number,
  addGenerationPrompt = false,
): string {
  if (!tokenizer.applyChatTemplate)
    throw new DataError('the tokenizer has no chat template for "messages"', file, line);
  try {
    return tokenizer.applyChatTemplate(messages, { addGenerationPrompt });
  } catch (error) {
    throw new DataError(`the chat template failed: ${(error as Error).message}`, file, line);
  }
}
