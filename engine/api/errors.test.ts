import { describe, expect, it } from 'vitest';
import { FlagError } from '../adapters/flags.ts';
import { AdapterStateError } from '../adapters/instance.ts';
import { AdapterConfigError } from '../adapters/registry.ts';
import { TargetError } from '../adapters/targets.ts';
import { AnalysisFileError } from '../analysis/store.ts';
import { describeError, StudioError } from '../common/errors.ts';
import { DataError } from '../data/errors.ts';
import { ExportError } from '../export/errors.ts';
import { EigCancelledError } from '../linalg/eig.ts';
import { ModelError } from '../models/config.ts';
import { ProjectError } from '../project/store.ts';
import { SafetensorsError } from '../safetensors/header.ts';

describe('engine error classes', () => {
  it('every engine error class is a StudioError with a code', () => {
    const errors: [StudioError, string][] = [
      [new ModelError('/m/config.json', 'file not found'), 'invalid_input'],
      [new DataError('bad line', '/d.jsonl', 3), 'invalid_input'],
      [new ExportError('no adapter'), 'invalid_input'],
      [new ProjectError('/p/project.json', 'bad'), 'invalid_input'],
      [new SafetensorsError('/w.safetensors', 'truncated'), 'invalid_input'],
      [new AdapterConfigError('invalid lora config'), 'invalid_input'],
      [new TargetError('no module matches'), 'invalid_input'],
      [new FlagError('--r takes a number'), 'invalid_input'],
      [new AnalysisFileError('bad analysis'), 'invalid_input'],
      [new AdapterStateError('already merged'), 'conflict'],
      [new EigCancelledError(), 'cancelled'],
    ];
    for (const [error, code] of errors) {
      expect(error, error.name).toBeInstanceOf(StudioError);
      expect(describeError(error), error.name).toEqual({ code, message: error.message });
    }
  });
});
