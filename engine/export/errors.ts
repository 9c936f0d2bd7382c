import { StudioError } from '../common/errors.ts';
/** An export or adapter-load failure; the message names the file (or run) and the problem. */
export class ExportError extends StudioError {
  constructor(message: string) {
    super('invalid_input', message);
    this.name = 'ExportError';
  }
}
