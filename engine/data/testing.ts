import type { ChatMessage } from './formats.ts';
import type { TextTokenizer } from './tokenize.ts';

/**
 * A word-level tokenizer for tests: ids are assigned on first sight of each whitespace-separated word
 * (0 = pad, 1 = bos, 2 = eos, 3 = sep), so encodings are easy to reason about.
 */
export class WordTokenizer implements TextTokenizer {
  readonly padTokenId = 0;
  readonly bosTokenId = 1;
  readonly eosTokenId = 2;
  private readonly vocab = new Map<string, number>([
    ['<pad>', 0],
    ['<s>', 1],
    ['</s>', 2],
    ['<sep>', 3],
  ]);

  constructor(private readonly addBos = true) {}

  private id(word: string): number {
    let id = this.vocab.get(word);
    if (id === undefined) {
      id = this.vocab.size;
      this.vocab.set(word, id);
    }
    return id;
  }

  encode(text: string, options?: { addSpecialTokens?: boolean; textPair?: string }): number[] {
    const words = (t: string) =>
      t
        .split(/\s+/)
        .filter((w) => w.length > 0)
        .map((w) => this.id(w));
    const ids = words(text);
    if (options?.textPair !== undefined) ids.push(3, ...words(options.textPair));
    return options?.addSpecialTokens && this.addBos ? [1, ...ids] : ids;
  }

  decode(ids: number[]): string {
    const names = [...this.vocab.keys()];
    return ids.map((i) => names[i] ?? `<${i}>`).join(' ');
  }

  applyChatTemplate(messages: ChatMessage[], options?: { addGenerationPrompt?: boolean }): string {
    const body = messages.map((m) => `<${m.role}> ${m.content} <end> `).join('');
    return options?.addGenerationPrompt ? `${body}<assistant> ` : body;
  }
}
