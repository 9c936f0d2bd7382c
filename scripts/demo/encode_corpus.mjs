#!/usr/bin/env node
// Encodes the pretraining text with the demo tokenizer exactly as the studio will (tokenizers.js), one verse per
// line, each followed by the end-of-text token; writes little-endian uint16 ids for pretrain.py.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

const [work = '/tmp/adapter-studio-demo', modelDir = 'assets/demo/model'] = process.argv.slice(2);
const tokenizer = new Tokenizer(
  JSON.parse(readFileSync(join(modelDir, 'tokenizer.json'), 'utf8')),
  JSON.parse(readFileSync(join(modelDir, 'tokenizer_config.json'), 'utf8')),
);
const eos = tokenizer.encode('<|endoftext|>', { add_special_tokens: false }).ids;
if (eos.length !== 1) throw new Error(`end-of-text must be one token, got ${eos}`);
const ids = [];
for (const line of readFileSync(join(work, 'pretrain.txt'), 'utf8').split('\n')) {
  if (!line) continue;
  ids.push(...tokenizer.encode(line, { add_special_tokens: false }).ids, eos[0]);
}
writeFileSync(join(work, 'pretrain.u16'), Buffer.from(new Uint16Array(ids).buffer));
const sample = tokenizer.encode('In the beginning God created the heaven and the earth.', {
  add_special_tokens: false,
});
console.log(
  `tokens ${ids.length}; sample ${JSON.stringify(sample.tokens)} -> "${tokenizer.decode(sample.ids)}"`,
);
