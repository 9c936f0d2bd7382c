export { DataCursor, type DataPosition, type PaddedBatch, padBatch } from './batches.ts';
export { parseDelimited } from './csv.ts';
export { DataError } from './errors.ts';
export { type ChatMessage, type DataFormat, detectFormat, type RawExample, readExamples } from './formats.ts';
export { collectLabelNames, labelIdOf } from './labels.ts';
export { type DataSources, type PreparedData, prepareData, type RawData, readData } from './prepare.ts';
export { formatPreview, type PreviewExample, type PreviewToken, previewExamples } from './preview.ts';
export { deriveSeed, permutation } from './shuffle.ts';
export { splitValidation } from './split.ts';
export {
  type EncodedExample,
  type EncodeOptions,
  encodeExample,
  encodeExamples,
  type LossOn,
  type TextTokenizer,
} from './tokenize.ts';
