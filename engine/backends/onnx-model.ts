/**
 * Hand-encoded one-node ONNX models (protobuf wire format), so the matmul route through onnxruntime needs no
 * `onnx` package or Python. Field numbers follow onnx.proto3 (ModelProto, GraphProto, NodeProto,
 * AttributeProto, ValueInfoProto, TypeProto.Tensor, TensorShapeProto).
 */

const utf8 = new TextEncoder();

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

function tag(field: number, wireType: 0 | 2 | 5): number[] {
  return varint(field * 8 + wireType);
}

function bytes(field: number, payload: number[]): number[] {
  return [...tag(field, 2), ...varint(payload.length), ...payload];
}

function str(field: number, value: string): number[] {
  return bytes(field, [...utf8.encode(value)]);
}

function int(field: number, value: number): number[] {
  return [...tag(field, 0), ...varint(value)];
}

const ATTRIBUTE_INT = 2;
const ELEM_FLOAT = 1;

function intAttribute(name: string, value: number): number[] {
  return bytes(5, [...str(1, name), ...int(3, value), ...int(20, ATTRIBUTE_INT)]);
}

/** A float32 tensor input/output whose dimensions are all symbolic (so one session serves every shape). */
function valueInfo(name: string, symbolicDims: string[]): number[] {
  const shape = symbolicDims.flatMap((d) => bytes(1, str(2, d)));
  const tensorType = [...int(1, ELEM_FLOAT), ...bytes(2, shape)];
  return [...str(1, name), ...bytes(2, bytes(1, tensorType))];
}

function dims(prefix: string, rank: number): string[] {
  return Array.from({ length: rank }, (_, i) => `${prefix}${i}`);
}

export interface MatMulModelSpec {
  /** `Gemm` (rank 2, opset 13) or `FusedMatMul` (com.microsoft, batched with numpy broadcasting). */
  op: 'Gemm' | 'FusedMatMul';
  rankA: number;
  rankB: number;
  transA: boolean;
  transB: boolean;
}

/** Encodes a model `Y = op(A)·op(B)` with inputs `A`, `B` and output `Y`. */
export function encodeMatMulModel(spec: MatMulModelSpec): Uint8Array {
  const { op, rankA, rankB, transA, transB } = spec;
  if (op === 'Gemm' && (rankA !== 2 || rankB !== 2)) throw new Error('Gemm takes rank-2 inputs only');
  const node = [
    ...str(1, 'A'),
    ...str(1, 'B'),
    ...str(2, 'Y'),
    ...str(3, 'matmul'),
    ...str(4, op),
    ...(op === 'FusedMatMul' ? str(7, 'com.microsoft') : []),
    ...intAttribute('transA', transA ? 1 : 0),
    ...intAttribute('transB', transB ? 1 : 0),
  ];
  const graph = [
    ...bytes(1, node),
    ...str(2, 'matmul'),
    ...bytes(11, valueInfo('A', dims('a', rankA))),
    ...bytes(11, valueInfo('B', dims('b', rankB))),
    ...bytes(12, valueInfo('Y', dims('y', Math.max(rankA, rankB)))),
  ];
  const model = [
    ...int(1, 7), // ir_version 7 pairs with opset 13
    ...str(2, 'adapter-studio'),
    ...bytes(8, [...str(1, ''), ...int(2, 13)]),
    ...(op === 'FusedMatMul' ? bytes(8, [...str(1, 'com.microsoft'), ...int(2, 1)]) : []),
    ...bytes(7, graph),
  ];
  return new Uint8Array(model);
}
