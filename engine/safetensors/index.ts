export {
  bf16ToF32,
  DTYPE_SIZE,
  DTYPES,
  type Dtype,
  decodeToFloat32,
  encodeFromFloat32,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  isDtype,
} from './dtypes.ts';
export { MAX_HEADER_BYTES, parseStrictJson, SafetensorsError, type TensorInfo } from './header.ts';
export {
  type CheckpointReader,
  INDEX_FILE,
  openCheckpoint,
  openSafetensors,
  type SafetensorsFile,
  SINGLE_FILE,
  type TensorMeta,
  type TensorSource,
} from './reader.ts';
export {
  encodeHeader,
  type ShardedWriteResult,
  type ShardOptions,
  type TensorData,
  type TensorEntry,
  tensorByteLength,
  writeSafetensors,
  writeSafetensorsStreaming,
  writeShardedSafetensors,
} from './writer.ts';
