import { useEffect, useState } from 'react';
import { ggufQuants, type RunInfo } from '../../../engine/common/contract.ts';
import { useStudio } from '../context.ts';
import { formatBytes } from '../lib/format.ts';
import { Card, ErrorNote } from './common.tsx';
import { PathPicker } from './PathPicker.tsx';

type Quant = (typeof ggufQuants)[number];

const QUANT_NOTES: Record<Quant, string> = {
  f32: 'full precision, as the merged safetensors',
  f16: 'half precision (the usual llama.cpp input)',
  bf16: 'bfloat16, the range of f32',
  q8_0: '8-bit blocks of 32, as convert_hf_to_gguf.py',
  q4_k_m: "llama-quantize's Q4_K_M mix (Q4_K, Q6_K for output, attn_v, ffn_down)",
};

/** GGUF for llama.cpp / Ollama: the merged model, or the base model plus the adapter as a GGUF LoRA. */
export function GgufExportCard({ run }: { run: RunInfo }) {
  const runDir = run.dir;
  const estimate = useStudio((s) => s.estimates[runDir] ?? null);
  const busy = useStudio((s) => s.busy);
  const runExport = useStudio((s) => s.runExport);
  const [quant, setQuant] = useState<Quant>('f16');
  const [format, setFormat] = useState<'gguf' | 'gguf-lora'>('gguf');
  const [out, setOut] = useState('');
  useEffect(() => setOut(`${runDir}/exports/${format}-${quant}`), [runDir, format, quant]);
  const area = `export-${format}`;
  const size = estimate?.[`gguf-${quant}`];
  return (
    <Card title="GGUF for llama.cpp and Ollama">
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          void runExport(runDir, format, out.trim(), { quant });
        }}
      >
        <select
          aria-label="GGUF content"
          value={format}
          onChange={(e) => setFormat(e.target.value as typeof format)}
          data-testid="gguf-format"
        >
          <option value="gguf">merged model</option>
          <option value="gguf-lora">base model + GGUF LoRA</option>
        </select>
        <select
          aria-label="quantisation"
          value={quant}
          onChange={(e) => setQuant(e.target.value as Quant)}
          data-testid="gguf-quant"
        >
          {ggufQuants.map((q) => (
            <option key={q} value={q}>
              {q}
            </option>
          ))}
        </select>
        <PathPicker id="gguf-out" label="GGUF folder" value={out} onChange={setOut} kind="new-folder" />
        <button
          type="submit"
          className="primary"
          disabled={busy[area] || !out.trim() || size === undefined}
          data-testid="gguf-export"
        >
          {busy[area] ? 'Writing and reading back…' : 'Export GGUF'}
        </button>
      </form>
      <p className="muted small">
        {QUANT_NOTES[quant]}. Model file before export:{' '}
        <strong data-testid="gguf-estimate">
          {estimate === null ? '…' : size === undefined ? 'not available for this model' : formatBytes(size)}
        </strong>
        . Written with an Ollama Modelfile; every tensor is read back and compared with the merged weights.
      </p>
      <ErrorNote area={area} />
    </Card>
  );
}
