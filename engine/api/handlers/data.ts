import type { DataPreview } from '../../common/contract.ts';
import { detectFormat, type PreviewExample, previewExamples } from '../../data/index.ts';
import { openProject, prepareProjectData, projectPath } from '../../project/index.ts';
import type { Handlers } from './context.ts';

/** Merges consecutive tokens with the same loss flag into text segments (prompt vs trained part). */
export function segmentsOf(example: PreviewExample): DataPreview['examples'][number]['segments'] {
  const out: { text: string; trained: boolean }[] = [];
  for (const token of example.tokens) {
    const last = out.at(-1);
    if (last && last.trained === token.trained) last.text += token.text;
    else out.push({ text: token.text, trained: token.trained });
  }
  return out;
}

export const dataHandlers: Pick<Handlers, 'data.preview'> = {
  async 'data.preview'({ projectDir, count }) {
    const project = await openProject(projectDir);
    const s = project.settings;
    const { tokenizer, data } = await prepareProjectData(project);
    const shown = (split: 'train' | 'validation', n: number) =>
      previewExamples(split === 'train' ? data.train : data.validation, tokenizer, n, data.labels).map(
        (p, index) => ({
          index,
          split,
          tokens: p.tokens.length,
          truncated: p.truncated,
          segments: segmentsOf(p),
          label: p.labelName ?? (p.label !== undefined ? String(p.label) : undefined),
        }),
      );
    return {
      format: s.data.format ?? detectFormat(projectPath(project.dir, s.data.train)),
      task: s.task,
      trainCount: data.stats.trainExamples,
      validationCount: data.stats.validationExamples,
      validationSource: s.data.validation
        ? `file ${s.data.validation}`
        : s.data.valFraction > 0
          ? `${Math.round(s.data.valFraction * 100)}% of the training file, held out with seed ${s.training.seed}`
          : 'none (no validation file or fraction)',
      examples: [...shown('train', count), ...shown('validation', Math.min(2, count))],
    };
  },
};
