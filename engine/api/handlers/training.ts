import { z } from 'zod';
import type { SettingField } from '../../common/contract.ts';
import { TrainingSettings } from '../../project/index.ts';
import { settingGroups, trainingWords } from '../../project/settings-help.ts';
import type { Handlers } from './context.ts';

/** The training form's fields: the project schema's JSON Schema per field, with its words and description. */
export function describeTraining(): SettingField[] {
  const json = z.toJSONSchema(TrainingSettings, { io: 'input', unrepresentable: 'any' }) as {
    properties: Record<string, Record<string, unknown>>;
  };
  return Object.entries(json.properties).map(([key, schema]) => {
    const words = trainingWords[key as keyof typeof trainingWords];
    return {
      key,
      label: words.label,
      unit: words.unit,
      help: String(schema.description ?? ''),
      group: words.group,
      advanced: Boolean(words.advanced),
      schema,
    };
  });
}

export const trainingHandlers: Pick<Handlers, 'training.describe'> = {
  async 'training.describe'() {
    return { groups: settingGroups.map((g) => ({ ...g })), fields: describeTraining() };
  },
};
