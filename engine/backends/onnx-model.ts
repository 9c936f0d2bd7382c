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

const ATTRIBUTE_FLOAT = 1;

function intAttribute(name: string, value: number): number[] {
  return bytes(5, [...str(1, name), ...int(3, value), ...int(20, ATTRIBUTE_INT)]);
}

function floatAttribute(name: string, value: number): number[] {
  const f = new Uint8Array(new Float32Array([value]).buffer);
  return bytes(5, [...str(1, name), ...tag(2, 5), ...f, ...int(20, ATTRIBUTE_FLOAT)]);
}

/** A float32 tensor input/output whose dimensions are all symbolic (so one session serves every shape). */
function valueInfo(name: string, symbolicDims: string[]): number[] {
  const shape = symbolicDims.flatMap((d) => bytes(1, str(2, d)));
  const tensorType = [...int(1, ELEM_FLOAT), ...bytes(2, shape)];
  return [...str(1, name), ...bytes(2, bytes(1, tensorType))];
}

export interface OnnxNodeSpec {
  /** Operator type, e.g. `Tanh`, `Gemm`, `FusedMatMul`. */
  op: string;
  /** `com.microsoft` for onnxruntime's contrib operators; the standard domain otherwise. */
  domain?: 'com.microsoft';
  /** Float32 inputs by name, each with its rank (dimensions stay symbolic). */
  inputs: { name: string; rank: number }[];
  outputs: { name: string; rank: number }[];
  /** Integer attributes (e.g. `transA`). */
  attributes?: Record<string, number>;
  /** Float attributes (e.g. QuickGelu's `alpha`). */
  floatAttributes?: Record<string, number>;
}

/** Encodes a model of one node (opset 13, plus the `com.microsoft` contrib domain when the node uses it). */
export function encodeNodeModel(spec: OnnxNodeSpec): Uint8Array {
  const node = [
    ...spec.inputs.flatMap((i) => str(1, i.name)),
    ...spec.outputs.flatMap((o) => str(2, o.name)),
    ...str(3, 'node'),
    ...str(4, spec.op),
    ...(spec.domain ? str(7, spec.domain) : []),
    ...Object.entries(spec.attributes ?? {}).flatMap(([name, value]) => intAttribute(name, value)),
    ...Object.entries(spec.floatAttributes ?? {}).flatMap(([name, value]) => floatAttribute(name, value)),
  ];
  const symbolic = (prefix: string, rank: number) => Array.from({ length: rank }, (_, i) => `${prefix}${i}`);
  const graph = [
    ...bytes(1, node),
    ...str(2, spec.op),
    ...spec.inputs.flatMap((i) => bytes(11, valueInfo(i.name, symbolic(`${i.name}_`, i.rank)))),
    ...spec.outputs.flatMap((o) => bytes(12, valueInfo(o.name, symbolic(`${o.name}_`, o.rank)))),
  ];
  const model = [
    ...int(1, 7), // ir_version 7 pairs with opset 13
    ...str(2, 'adapter-studio'),
    ...bytes(8, [...str(1, ''), ...int(2, 13)]),
    ...(spec.domain ? bytes(8, [...str(1, spec.domain), ...int(2, 1)]) : []),
    ...bytes(7, graph),
  ];
  return new Uint8Array(model);
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
  return encodeNodeModel({
    op,
    domain: op === 'FusedMatMul' ? 'com.microsoft' : undefined,
    inputs: [
      { name: 'A', rank: rankA },
      { name: 'B', rank: rankB },
    ],
    outputs: [{ name: 'Y', rank: Math.max(rankA, rankB) }],
    attributes: { transA: transA ? 1 : 0, transB: transB ? 1 : 0 },
  });
}
