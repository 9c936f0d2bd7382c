import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { ModelError, readOptionalJson } from './config.ts';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface EncodeOptions {
  /** Add the tokenizer's special tokens (BOS, [CLS]/[SEP], …) as its post-processor defines (default true). */
  addSpecialTokens?: boolean;
  /** Second text of a pair (sentence-pair classification). */
  textPair?: string;
}

export interface ChatTemplateOptions {
  /** Append the assistant turn header so the model continues as the assistant. */
  addGenerationPrompt?: boolean;
}

type SpecialName =
  | 'bos_token'
  | 'eos_token'
  | 'pad_token'
  | 'unk_token'
  | 'sep_token'
  | 'cls_token'
  | 'mask_token';
const SPECIAL_NAMES: SpecialName[] = [
  'bos_token',
  'eos_token',
  'pad_token',
  'unk_token',
  'sep_token',
  'cls_token',
  'mask_token',
];

/** A special token in tokenizer_config.json: a string or an AddedToken object with `content`. */
function tokenContent(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return null;
}

function idList(value: unknown): number[] {
  if (typeof value === 'number' && Number.isInteger(value)) return [value];
  if (Array.isArray(value))
    return value.filter((v): v is number => typeof v === 'number' && Number.isInteger(v));
  return [];
}

/** A Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) with its chat template. */
export class StudioTokenizer {
  /** Special token strings by name (`eos_token` → `</s>`), for templates and display. */
  readonly specialTokens: Partial<Record<SpecialName, string>>;

  constructor(
    private readonly tokenizer: Tokenizer,
    readonly dir: string,
    private readonly tokenizerConfig: Record<string, unknown>,
    readonly chatTemplate: string | null,
    readonly bosTokenId: number | null,
    readonly eosTokenId: number | null,
    readonly padTokenId: number | null,
    /** Every id that ends generation (generation_config.json may list several). */
    readonly eosTokenIds: number[],
  ) {
    this.specialTokens = {};
    for (const name of SPECIAL_NAMES) {
      const content = tokenContent(tokenizerConfig[name]);
      if (content !== null) this.specialTokens[name] = content;
    }
  }

  /** Vocabulary size including added tokens. */
  get vocabSize(): number {
    return this.tokenizer.get_vocab(true).size;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.tokenizer.encode(text, {
      add_special_tokens: options.addSpecialTokens ?? true,
      text_pair: options.textPair ?? null,
    }).ids;
  }

  /** Ids with their segment ids (0 for the first text, 1 for `textPair`), for BERT's token_type_ids. */
  encodeWithTypeIds(text: string, options: EncodeOptions = {}): { ids: number[]; typeIds: number[] } {
    const encoding = this.tokenizer.encode(text, {
      add_special_tokens: options.addSpecialTokens ?? true,
      text_pair: options.textPair ?? null,
      return_token_type_ids: true,
    });
    return { ids: encoding.ids, typeIds: encoding.token_type_ids };
  }

  decode(ids: number[], options: { skipSpecialTokens?: boolean } = {}): string {
    return this.tokenizer.decode(ids, { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  tokenToId(token: string): number | null {
    return this.tokenizer.token_to_id(token) ?? null;
  }

  idToToken(id: number): string | null {
    return this.tokenizer.id_to_token(id) ?? null;
  }

  /** Renders messages with the model's chat template (as transformers' `apply_chat_template(tokenize=False)`). */
  applyChatTemplate(messages: ChatMessage[], options: ChatTemplateOptions = {}): string {
    if (this.chatTemplate === null) {
      throw new ModelError(
        join(this.dir, 'tokenizer_config.json'),
        'no chat_template (this is not a chat model)',
      );
    }
    const context: Record<string, unknown> = {
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? false,
    };
    for (const name of SPECIAL_NAMES) context[name] = this.specialTokens[name] ?? '';
    for (const [key, value] of Object.entries(this.tokenizerConfig)) {
      if (key.endsWith('_token') && !(key in context)) context[key] = tokenContent(value) ?? '';
    }
    return new Template(this.chatTemplate).render(context);
  }
}

async function chatTemplateOf(dir: string, tokenizerConfig: Record<string, unknown>): Promise<string | null> {
  // transformers ≥ 4.43 may save the template beside the config
  try {
    return await fs.readFile(join(dir, 'chat_template.jinja'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const separate = await readOptionalJson(join(dir, 'chat_template.json'));
  const raw = separate?.chat_template ?? tokenizerConfig.chat_template;
  if (typeof raw === 'string') return raw;
  if (Array.isArray(raw)) {
    const named = raw as { name?: string; template?: string }[];
    const chosen = named.find((t) => t.name === 'default') ?? named[0];
    return typeof chosen?.template === 'string' ? chosen.template : null;
  }
  return null;
}

/**
 * Loads `tokenizer.json` and `tokenizer_config.json` from a model folder; special token ids fall back to
 * config.json / generation_config.json when the tokenizer config does not name them.
 */
export async function loadTokenizer(dir: string): Promise<StudioTokenizer> {
  const tokenizerPath = join(dir, 'tokenizer.json');
  const tokenizerJson = await readOptionalJson(tokenizerPath);
  if (tokenizerJson === null) {
    throw new ModelError(
      tokenizerPath,
      'file not found (only fast tokenizers, tokenizer.json, are supported)',
    );
  }
  const tokenizerConfig = (await readOptionalJson(join(dir, 'tokenizer_config.json'))) ?? {};
  const modelConfig = (await readOptionalJson(join(dir, 'config.json'))) ?? {};
  const generationConfig = (await readOptionalJson(join(dir, 'generation_config.json'))) ?? {};
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
  } catch (error) {
    throw new ModelError(tokenizerPath, `cannot build the tokenizer: ${(error as Error).message}`);
  }
  const idOf = (name: SpecialName): number | null => {
    const content = tokenContent(tokenizerConfig[name]);
    return content === null ? null : (tokenizer.token_to_id(content) ?? null);
  };
  const firstId = (...values: unknown[]): number | null => {
    for (const v of values) {
      const ids = idList(v);
      if (ids.length > 0) return ids[0];
    }
    return null;
  };
  // an explicit `"bos_token": null` (Qwen2) means none, whatever config.json says
  const special = (name: SpecialName, key: string): number | null =>
    name in tokenizerConfig ? idOf(name) : firstId(generationConfig[key], modelConfig[key]);
  const bos = special('bos_token', 'bos_token_id');
  const eos = special('eos_token', 'eos_token_id');
  const pad = special('pad_token', 'pad_token_id');
  const eosIds = [...new Set([...(eos === null ? [] : [eos]), ...idList(generationConfig.eos_token_id)])];
  const template = await chatTemplateOf(dir, tokenizerConfig);
  return new StudioTokenizer(tokenizer, dir, tokenizerConfig, template, bos, eos, pad, eosIds);
}
