/**
 * An Ollama Modelfile for an exported GGUF: FROM the model file, ADAPTER the GGUF LoRA when there is one, a
 * TEMPLATE in Ollama's Go-template syntax translated from the chat template's family, and PARAMETER stop for
 * the tokens that end a turn. A chat template of no family known here gets no TEMPLATE line (Ollama then
 * uses the template the GGUF carries) and a comment saying so.
 */

interface TemplateFamily {
  name: string;
  /** Tokens whose presence in the Jinja template identifies the family. */
  markers: string[];
  template: string;
  stop: string[];
}

const FAMILIES: TemplateFamily[] = [
  {
    name: 'ChatML',
    markers: ['<|im_start|>', '<|im_end|>'],
    template:
      '{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}<|im_start|>assistant\n{{ .Response }}<|im_end|>\n',
    stop: ['<|im_start|>', '<|im_end|>'],
  },
  {
    name: 'Llama 3',
    markers: ['<|start_header_id|>', '<|eot_id|>'],
    template:
      '{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>',
    stop: ['<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'],
  },
  {
    name: 'Gemma',
    markers: ['<start_of_turn>', '<end_of_turn>'],
    template:
      '<start_of_turn>user\n{{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}<end_of_turn>\n<start_of_turn>model\n{{ .Response }}<end_of_turn>\n',
    stop: ['<start_of_turn>', '<end_of_turn>'],
  },
  {
    name: 'Phi-3',
    markers: ['<|user|>', '<|assistant|>', '<|end|>'],
    template:
      '{{ if .System }}<|system|>\n{{ .System }}<|end|>\n{{ end }}{{ if .Prompt }}<|user|>\n{{ .Prompt }}<|end|>\n{{ end }}<|assistant|>\n{{ .Response }}<|end|>\n',
    stop: ['<|end|>', '<|user|>', '<|assistant|>'],
  },
  {
    name: 'Mistral [INST]',
    markers: ['[INST]', '[/INST]'],
    template: '[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }} [/INST]{{ .Response }}',
    stop: ['[INST]', '[/INST]'],
  },
];

export interface ModelfileInput {
  /** The model GGUF, relative to the Modelfile. */
  from: string;
  /** The GGUF LoRA, relative to the Modelfile. */
  adapter?: string;
  chatTemplate: string | null;
  /** Token strings by id, to check the family's tokens exist and to name the EOS token. */
  tokens: string[];
  eosTokenId: number | null;
}

export interface Modelfile {
  text: string;
  /** The family the TEMPLATE was translated from, or null (none written). */
  family: string | null;
  stop: string[];
}

/** The Go-template family of a Jinja chat template whose marker tokens are all in the vocabulary. */
export function templateFamily(chatTemplate: string, tokens: string[]): TemplateFamily | null {
  const vocab = new Set(tokens);
  return (
    FAMILIES.find(
      (f) =>
        f.markers.every((m) => chatTemplate.includes(m)) &&
        f.stop.every((s) => vocab.has(s) || !s.startsWith('<')),
    ) ?? null
  );
}

function quoted(value: string): string {
  return JSON.stringify(value);
}

export function buildModelfile(input: ModelfileInput): Modelfile {
  const lines = [`FROM ${input.from}`];
  if (input.adapter) lines.push(`ADAPTER ${input.adapter}`);
  const eos = input.eosTokenId === null ? null : (input.tokens[input.eosTokenId] ?? null);
  let family: TemplateFamily | null = null;
  let stop: string[] = [];
  if (input.chatTemplate === null) {
    // a base model without a chat template: plain completion of the prompt
    lines.push('TEMPLATE """{{ .Prompt }}"""');
    if (eos) stop = [eos];
  } else {
    family = templateFamily(input.chatTemplate, input.tokens);
    if (family) {
      lines.push(`TEMPLATE """${family.template}"""`);
      stop = [...family.stop];
      if (eos && !stop.includes(eos)) stop.push(eos);
    } else {
      lines.push(
        '# The chat template is of no family this exporter translates to Ollama syntax; Ollama uses the one in the GGUF (tokenizer.chat_template).',
      );
      if (eos) stop = [eos];
    }
  }
  for (const s of stop) lines.push(`PARAMETER stop ${quoted(s)}`);
  return { text: `${lines.join('\n')}\n`, family: family?.name ?? null, stop };
}
