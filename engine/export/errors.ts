/** An export or adapter-load failure; the message names the file (or run) and the problem. */
export class ExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportError';
  }
}
