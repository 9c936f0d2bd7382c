import { StudioError } from '../common/errors.ts';
/** A problem with a dataset file: the message names the file and, where known, the line. */
export class DataError extends StudioError {
  constructor(
    message: string,
    readonly file: string,
    readonly line?: number,
  ) {
    super('invalid_input', line === undefined ? `${file}: ${message}` : `${file}:${line}: ${message}`);
    this.name = 'DataError';
  }
}
