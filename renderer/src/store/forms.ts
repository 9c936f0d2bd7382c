import type { FormsSlice, Slice, Studio } from './types.ts';

const prefix = (form: string) => `${form}:`;

/** The field errors of forms, in field order of typing; an action of these forms waits until they are fixed. */
export function formErrors(state: Pick<Studio, 'fieldErrors'>, ...forms: string[]): string[] {
  return Object.entries(state.fieldErrors)
    .filter(([id]) => forms.some((f) => id.startsWith(prefix(f))))
    .map(([, error]) => error);
}

function without<T>(record: Record<string, T>, form: string): Record<string, T> {
  return Object.fromEntries(Object.entries(record).filter(([id]) => !id.startsWith(prefix(form))));
}

export const formsSlice: Slice<FormsSlice> = (set) => ({
  fieldTexts: {},
  fieldErrors: {},
  setFieldText(form, key, text, error) {
    const id = `${prefix(form)}${key}`;
    set((s) => {
      const fieldTexts = { ...s.fieldTexts };
      const fieldErrors = { ...s.fieldErrors };
      if (text === undefined) delete fieldTexts[id];
      else fieldTexts[id] = text;
      if (error === null) delete fieldErrors[id];
      else fieldErrors[id] = error;
      return { fieldTexts, fieldErrors };
    });
  },
  resetForm: (form) =>
    set((s) => ({ fieldTexts: without(s.fieldTexts, form), fieldErrors: without(s.fieldErrors, form) })),
});
