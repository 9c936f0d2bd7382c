import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { readOptionalJson } from '../../models/config.ts';
import { loadTokenizer } from '../../models/tokenizer.ts';
import { ExportError } from '../errors.ts';
import { arr, bool, type GgufValue, str, u32, ValueType } from './format.ts';
import { PRE_TOKENIZER_CHECK_TEXT, PRE_TOKENIZER_HASHES } from './pre-tokenizers.ts';

/** llama.cpp's token types (gguf-py TokenType). */
const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** The converter's `does_token_look_special`. */
function looksSpecial(token: string): boolean {
  return (
    ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(token) ||
    (token.startsWith('<|') && token.endsWith('|>')) ||
    (token.startsWith('<｜') && token.endsWith('｜>')) ||
    (token.startsWith('<unused') && token.endsWith('>'))
  );
}

interface AddedToken {
  id: number;
  content: string;
  special?: boolean;
  normalized?: boolean;
}

export interface TokenizerJson {
  model?: {
    type?: string;
    vocab?: Record<string, number>;
    merges?: unknown[];
    byte_fallback?: boolean;
    ignore_merges?: boolean;
  };
  added_tokens?: AddedToken[];
  pre_tokenizer?: Record<string, unknown> | null;
  decoder?: { type?: string } | null;
  normalizer?: Record<string, unknown> | null;
  post_processor?: Record<string, unknown> | null;
}

/** Python's `str(list_of_ints)`. */
function pyList(ids: number[]): string {
  return `[${ids.join(', ')}]`;
}

/** The split regexes of llama.cpp's pre-tokenizer types that a tokenizer.json spells out itself. */
const SPLIT_REGEXES: Record<string, string> = {
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    'llama-bpe',
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    'qwen2',
};

/** A normaliser llama.cpp's BPE tokenizers do not apply either: none, or NFC (which Qwen2's own files carry). */
function harmlessNormalizer(n: Record<string, unknown> | null | undefined): boolean {
  return n === null || n === undefined || n.type === 'NFC';
}

/**
 * `tokenizer.ggml.pre` as the converter finds it (the hash of the check text's ids in its table). A tokenizer
 * trained here is in no table, so when the hash is unknown the pre-tokenizer is recognised by its structure
 * where llama.cpp implements exactly that split: GPT-2's byte-level regex (`gpt-2`), Llama 3's and Qwen2's
 * split regex before a byte-level step without its own regex (`llama-bpe`, `qwen2`).
 */
export function preTokenizerName(json: TokenizerJson, ids: number[], path: string): string {
  const hash = createHash('sha256').update(pyList(ids)).digest('hex');
  const known = PRE_TOKENIZER_HASHES[hash];
  if (known) return known;
  const pre = json.pre_tokenizer;
  if (harmlessNormalizer(json.normalizer)) {
    if (pre?.type === 'ByteLevel' && pre.use_regex !== false && pre.add_prefix_space !== true) return 'gpt-2';
    const steps = pre?.type === 'Sequence' ? (pre.pretokenizers as Record<string, unknown>[]) : [];
    const [split, byteLevel] = steps;
    const regex = (split?.pattern as { Regex?: string } | undefined)?.Regex;
    if (
      steps.length === 2 &&
      split.type === 'Split' &&
      split.behavior === 'Isolated' &&
      split.invert === false &&
      regex !== undefined &&
      SPLIT_REGEXES[regex] &&
      byteLevel.type === 'ByteLevel' &&
      byteLevel.use_regex === false &&
      byteLevel.add_prefix_space !== true
    ) {
      return SPLIT_REGEXES[regex];
    }
  }
  throw new ExportError(
    `${path}: the BPE pre-tokenizer is not one llama.cpp knows (check-text hash ${hash}, pre_tokenizer ${JSON.stringify(pre?.type ?? null)}); llama.cpp would tokenize differently, so no GGUF is written`,
  );
}

/** The merges as gguf-py's SpecialVocab writes them (pair lists joined by a space, spaces inside as U+0120+…). */
function mergesOf(json: TokenizerJson, path: string): string[] {
  const merges = json.model?.merges;
  if (!Array.isArray(merges) || merges.length === 0) return [];
  if (typeof merges[0] === 'string') return merges as string[];
  if (Array.isArray(merges[0]) && merges[0].length === 2) {
    return (merges as string[][]).map((pair) =>
      pair
        .map((part) => [...part].map((c) => (c === ' ' ? String.fromCodePoint(0x20 + 256) : c)).join(''))
        .join(' '),
    );
  }
  throw new ExportError(`${path}: unknown merges format in tokenizer.json`);
}

function contentOf(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return null;
}

/**
 * gguf-py's SpecialVocab: special-token ids (from tokenizer_config.json's `*_token` matched against
 * tokenizer.json's added tokens, then config.json's `*_token_id`), `add_*_token` flags (the post-processor's
 * template, then tokenizer_config.json), the chat template and normaliser flags, in the order it writes them.
 */
function specialVocab(
  json: TokenizerJson,
  tokenizerConfig: Record<string, unknown> | null,
  config: Record<string, unknown>,
  chatTemplate: string | null,
  nVocab: number | null,
  merges: string[],
): [string, GgufValue][] {
  const types = ['bos', 'eos', 'unk', 'sep', 'pad', 'cls', 'mask'];
  const ids = new Map<string, number>();
  const add = new Map<string, boolean>();
  const tc = tokenizerConfig ? { ...tokenizerConfig } : null;
  const set = (typ: string, id: unknown) => {
    if (typeof id !== 'number' || !Number.isInteger(id)) return;
    if (id < 0) throw new ExportError(`invalid value for special token type ${typ}: ${id}`);
    if ((nVocab === null || id < nVocab) && !ids.has(typ)) ids.set(typ, id);
  };
  const added = json.added_tokens ?? [];
  let specialBos = contentOf(tc?.bos_token);
  let specialEos = contentOf(tc?.eos_token);
  const specialCls = contentOf(tc?.cls_token);
  let specialSep = contentOf(tc?.sep_token);
  if (!specialBos && specialCls && tc) {
    tc.bos_token = specialCls;
    specialBos = specialCls;
  }
  if (!specialEos && specialSep && tc) {
    tc.eos_token = specialSep;
    specialEos = specialSep;
  }
  const post = json.post_processor;
  type Piece = { SpecialToken?: { id?: string }; Sequence?: { id?: string } };
  if (post) {
    const processors = (Array.isArray(post.processors) ? post.processors : [post]) as Record<
      string,
      unknown
    >[];
    for (const p of processors) {
      if (p.type === 'RobertaProcessing') {
        add.set('bos', true);
        add.set('eos', true);
        add.set('sep', true);
        continue;
      }
      if (p.type !== 'TemplateProcessing') continue;
      // gguf-py's crude parse of the single and pair templates
      const single = (p.single ?? []) as Piece[];
      let pair = (p.pair ?? []) as Piece[];
      let first: string | undefined;
      let last: string | undefined;
      if (single.length > 1) {
        first = single[0]?.SpecialToken?.id;
        if (first) {
          if (!tc) specialBos = first;
          add.set('bos', first === specialBos || first === specialCls);
        }
        last = single[single.length - 1]?.SpecialToken?.id;
        if (last) {
          if (!tc) specialEos = last;
          add.set('eos', last === specialEos);
        }
      }
      if (pair.length > 0) {
        const start = first && pair[0]?.SpecialToken?.id === first ? 1 : 0;
        const stop = last && pair[pair.length - 1]?.SpecialToken?.id === last ? pair.length - 1 : pair.length;
        pair = pair.slice(start, stop);
        if (pair.length > 0) {
          const a = pair[0]?.Sequence?.id;
          const b = pair[pair.length - 1]?.Sequence?.id;
          const middle = pair.slice(1, -1);
          if (a === 'A' && b === 'B' && middle.length > 0) {
            let addSep = false;
            const entry = middle[0]?.SpecialToken?.id;
            if (entry && (entry === specialSep || entry === specialEos) && !last) addSep = true;
            if (middle.length === 2) {
              const second = middle[1]?.SpecialToken?.id;
              if (second && (second === specialSep || second === specialEos)) addSep = true;
            }
            add.set('sep', addSep);
            if (addSep && !specialSep && tc) {
              tc.sep_token = specialEos;
              specialSep = specialEos;
            }
          }
        }
      }
    }
  }
  if (tc) {
    for (const typ of types) {
      const flag = tc[`add_${typ}_token`];
      if (typeof flag === 'boolean') add.set(typ, flag);
      const content = contentOf(tc[`${typ}_token`]);
      if (content === null) continue;
      set(typ, added.find((t) => t.content === content)?.id);
    }
  }
  for (const typ of types) set(typ, config[`${typ}_token_id`]);
  const idKeys: Record<string, string> = {
    bos: 'tokenizer.ggml.bos_token_id',
    eos: 'tokenizer.ggml.eos_token_id',
    unk: 'tokenizer.ggml.unknown_token_id',
    sep: 'tokenizer.ggml.seperator_token_id',
    pad: 'tokenizer.ggml.padding_token_id',
    mask: 'tokenizer.ggml.mask_token_id',
  };
  const out: [string, GgufValue][] = [];
  if (merges.length > 0) out.push(['tokenizer.ggml.merges', arr(ValueType.STRING, merges)]);
  for (const [typ, id] of ids) if (idKeys[typ]) out.push([idKeys[typ], u32(id)]);
  for (const [typ, value] of add) {
    if (typ === 'bos' || typ === 'eos' || typ === 'sep')
      out.push([`tokenizer.ggml.add_${typ}_token`, bool(value)]);
  }
  if (chatTemplate !== null && chatTemplate !== '') out.push(['tokenizer.chat_template', str(chatTemplate)]);
  return out;
}

/** The chat template as SpecialVocab reads it: tokenizer_config.json first, then chat_template.jinja / .json. */
async function chatTemplateOf(
  dir: string,
  tokenizerConfig: Record<string, unknown> | null,
): Promise<string | null> {
  if (!tokenizerConfig) return null;
  let alt: unknown = null;
  try {
    alt = await fs.readFile(join(dir, 'chat_template.jinja'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    alt = (await readOptionalJson(join(dir, 'chat_template.json')))?.chat_template ?? null;
  }
  const template = 'chat_template' in tokenizerConfig ? tokenizerConfig.chat_template : alt;
  if (typeof template === 'string') return template;
  if (Array.isArray(template)) {
    throw new ExportError(
      `${join(dir, 'tokenizer_config.json')}: several named chat templates; GGUF export writes one (tokenizer.chat_template)`,
    );
  }
  return null;
}

export interface GgufVocab {
  metadata: [string, GgufValue][];
  /** `tokenizer.ggml.model`: `gpt2` (byte-level BPE) or `llama` (SentencePiece-style BPE with byte fallback). */
  model: 'gpt2' | 'llama';
  tokens: string[];
  chatTemplate: string | null;
  eosTokenId: number | null;
}

/**
 * The tokenizer metadata llama.cpp's converter writes for a model folder with tokenizer.json: byte-level BPE
 * as `gpt2` (`_set_vocab_gpt2`), SentencePiece-style BPE with byte fallback as `llama` (`LlamaHfVocab`, for
 * the llama family only). Other tokenizers (Unigram, WordPiece, a bare tokenizer.model) are refused.
 */
export async function ggufVocab(
  dir: string,
  config: Record<string, unknown>,
  vocabSize: number,
  allowLlamaVocab: boolean,
): Promise<GgufVocab> {
  const path = join(dir, 'tokenizer.json');
  const json = (await readOptionalJson(path)) as TokenizerJson | null;
  if (!json) throw new ExportError(`${path}: not found; GGUF export needs the model's fast tokenizer`);
  const tokenizerConfig = await readOptionalJson(join(dir, 'tokenizer_config.json'));
  const tokenizer = await loadTokenizer(dir);
  const chatTemplate = await chatTemplateOf(dir, tokenizerConfig);
  const model = json.model ?? {};
  const vocab = model.vocab ?? {};
  const added = json.added_tokens ?? [];
  const metadata: [string, GgufValue][] = [];
  const isLlamaHf =
    model.type === 'BPE' &&
    model.byte_fallback === true &&
    json.decoder?.type === 'Sequence' &&
    !model.ignore_merges;
  // LlamaModel.set_vocab writes add_prefix_space before choosing a vocabulary, so whichever it then writes
  if (allowLlamaVocab && tokenizerConfig && typeof tokenizerConfig.add_prefix_space === 'boolean') {
    metadata.push(['tokenizer.ggml.add_space_prefix', bool(tokenizerConfig.add_prefix_space)]);
  }
  if (isLlamaHf && allowLlamaVocab) {
    const reverse = new Map<number, string>();
    for (const [t, id] of Object.entries(vocab)) reverse.set(id, t);
    const baseSize = Object.keys(vocab).length;
    const specialIds = new Set<number>();
    for (const name of [
      'bos_token',
      'eos_token',
      'unk_token',
      'sep_token',
      'pad_token',
      'cls_token',
      'mask_token',
    ]) {
      const content = contentOf(tokenizerConfig?.[name]);
      const id = content === null ? null : tokenizer.tokenToId(content);
      if (id !== null) specialIds.add(id);
    }
    const extra = tokenizerConfig?.additional_special_tokens;
    if (Array.isArray(extra)) {
      for (const t of extra) {
        const id = contentOf(t) === null ? null : tokenizer.tokenToId(contentOf(t)!);
        if (id !== null) specialIds.add(id);
      }
    }
    const addedBeyond = added.filter((t) => t.id >= baseSize).sort((a, b) => a.id - b.id);
    const tokens: string[] = [];
    const types: number[] = [];
    const addedIds = new Set(addedBeyond.map((t) => t.id));
    for (let id = 0; id < baseSize; id++) {
      if (addedIds.has(id)) continue;
      const text = reverse.get(id);
      if (text === undefined) throw new ExportError(`${path}: vocabulary has no token with id ${id}`);
      tokens.push(text);
      types.push(
        /^<0x[0-9A-Fa-f]{2}>$/.test(text)
          ? TokenType.BYTE
          : specialIds.has(id)
            ? TokenType.CONTROL
            : TokenType.NORMAL,
      );
    }
    for (const t of addedBeyond) {
      tokens.push(t.content);
      types.push(specialIds.has(t.id) ? TokenType.CONTROL : TokenType.USER_DEFINED);
    }
    metadata.push(
      ['tokenizer.ggml.model', str('llama')],
      ['tokenizer.ggml.pre', str('default')],
      ['tokenizer.ggml.tokens', arr(ValueType.STRING, tokens)],
      [
        'tokenizer.ggml.scores',
        arr(
          ValueType.FLOAT32,
          tokens.map(() => -1000),
        ),
      ],
      ['tokenizer.ggml.token_type', arr(ValueType.INT32, types)],
      ...specialVocab(json, tokenizerConfig, config, chatTemplate, tokens.length, []),
    );
    return { metadata, model: 'llama', tokens, chatTemplate, eosTokenId: tokenizer.eosTokenId };
  }
  if (model.type !== 'BPE' || isLlamaHf) {
    throw new ExportError(
      `${path}: a ${model.type ?? 'unknown'} tokenizer${isLlamaHf ? ' with byte fallback' : ''} cannot be written for this architecture (GGUF export writes byte-level BPE tokenizers${allowLlamaVocab ? ' and SentencePiece-style BPE' : ''})`,
    );
  }
  const reverse = new Map<number, string>();
  for (const [t, id] of Object.entries(vocab)) reverse.set(id, t);
  for (const t of added) reverse.set(t.id, t.content);
  const addedByContent = new Map(added.map((t) => [t.content, t]));
  const maxId = Math.max(...reverse.keys());
  if (maxId >= vocabSize) {
    throw new ExportError(`${path}: token id ${maxId} is outside the model's vocab_size ${vocabSize}`);
  }
  const tokens: string[] = [];
  const types: number[] = [];
  for (let i = 0; i < vocabSize; i++) {
    let token = reverse.get(i);
    if (token === undefined) {
      tokens.push(`[PAD${i}]`);
      types.push(TokenType.UNUSED);
      continue;
    }
    const addedToken = addedByContent.get(token);
    if (addedToken) {
      if (addedToken.normalized === false) {
        token = tokenizer.decode(tokenizer.encode(token, { addSpecialTokens: false }));
      }
      if (addedToken.special || looksSpecial(token)) {
        types.push(TokenType.CONTROL);
      } else {
        token = token.replaceAll('\u2581', ' ');
        types.push(TokenType.USER_DEFINED);
      }
    } else {
      types.push(TokenType.NORMAL);
    }
    tokens.push(token);
  }
  const pre = preTokenizerName(json, tokenizer.encode(PRE_TOKENIZER_CHECK_TEXT), path);
  metadata.push(
    ['tokenizer.ggml.model', str('gpt2')],
    ['tokenizer.ggml.pre', str(pre)],
    ['tokenizer.ggml.tokens', arr(ValueType.STRING, tokens)],
    ['tokenizer.ggml.token_type', arr(ValueType.INT32, types)],
    ...specialVocab(json, tokenizerConfig, config, chatTemplate, null, mergesOf(json, path)),
  );
  return { metadata, model: 'gpt2', tokens, chatTemplate, eosTokenId: tokenizer.eosTokenId };
}
