import { formatPreview, previewExamples } from '../../data/preview.ts';
import { prepareProjectData } from '../../project/data.ts';
import { openProject } from '../../project/store.ts';
import { CliError, type Command, jsonOption, numberArg, positional, stringArg } from '../command.ts';

export const command: Command = {
  name: 'preview-data',
  summary:
    'Show the first examples as the model sees them: tokens with their text, the trained (loss) part marked ⟦…⟧ or in colour, labels, truncation.',
  usage: '<project> [--n 5] [--split train|validation] [--json]',
  options: {
    n: { type: 'string', description: 'number of examples', default: '5', value: '<n>' },
    split: { type: 'string', description: 'train or validation', default: 'train', value: '<split>' },
    json: jsonOption,
  },
  async run(args, io) {
    const project = await openProject(positional(args, 0, 'project folder'));
    const n = numberArg(args, 'n') ?? 5;
    const split = stringArg(args, 'split') ?? 'train';
    if (split !== 'train' && split !== 'validation')
      throw new CliError(`--split must be train or validation, got "${split}"`, 2);
    const s = project.settings;
    const { tokenizer, data } = await prepareProjectData(project);
    const examples = split === 'train' ? data.train : data.validation;
    const preview = previewExamples(examples, tokenizer, n, data.labels);
    if (args.values.json) {
      io.out(JSON.stringify({ stats: data.stats, labels: data.labels, examples: preview }, null, 2));
      return 0;
    }
    const st = data.stats;
    io.out(
      `${st.trainExamples} train / ${st.validationExamples} validation examples, ${st.trainTokens} train tokens, ${st.truncated} truncated to ${s.training.maxSeqLen}${data.labels ? `; labels ${data.labels.map((l, i) => `${i}=${l}`).join(' ')}` : ''}`,
    );
    for (const p of preview) io.out(`\n${formatPreview(p, io.isTTY)}`);
    return 0;
  },
};
