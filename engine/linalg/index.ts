export {
  frobenius,
  fromRows,
  fromTensor,
  identity,
  type Matrix,
  matmul,
  matrix,
  maxAbsDiff,
  sliceCols,
  sliceRows,
  toTensor,
  transpose,
} from './matrix.ts';
export { orthonormalize, qr } from './qr.ts';
export { applySignConvention, type Svd, svd } from './svd.ts';
export { type TruncatedSvd, type TruncatedSvdOptions, truncatedSvd } from './truncated.ts';
