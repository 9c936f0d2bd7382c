import { type PreparedData, prepareData } from '../data/prepare.ts';
import { loadTokenizer, type StudioTokenizer } from '../models/index.ts';
import { type Project, projectDataSources, projectPath } from './store.ts';

/** A project's tokenizer and its examples tokenized as training will see them (for previews). */
export async function prepareProjectData(
  project: Project,
): Promise<{ tokenizer: StudioTokenizer; data: PreparedData }> {
  const s = project.settings;
  const tokenizer = await loadTokenizer(projectPath(project.dir, s.model));
  const data = await prepareData(projectDataSources(project.dir, s), tokenizer, {
    maxSeqLen: s.training.maxSeqLen,
    lossOn: s.training.lossOn,
  });
  return { tokenizer, data };
}
