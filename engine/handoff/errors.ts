import { StudioError } from '../common/errors.ts';

/** A project the hand-off cannot reproduce, or a destination it will not write into. */
export class HandoffError extends StudioError {
  constructor(message: string) {
    super('invalid_input', message);
    this.name = 'HandoffError';
  }
}
