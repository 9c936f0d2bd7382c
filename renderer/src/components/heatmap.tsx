import { formatNumber } from '../lib/format.ts';

/** Viridis-like ramp from 5 stops: readable in both themes and for colour-blind users. */
const stops = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

export function rampColor(t: number): string {
  const x = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2);
  const f = x - i;
  const c = stops[i].map((v, k) => Math.round(v + (stops[i + 1][k] - v) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

export function valueRange(matrix: (number | null)[][]): [number, number] {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const row of matrix)
    for (const v of row) {
      if (v === null || !Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  if (lo === Number.POSITIVE_INFINITY) return [0, 1];
  return lo === hi ? [lo, lo + 1] : [lo, hi];
}

/** A rows × columns heatmap in SVG (recharts has none); each cell's exact value is in its tooltip. */
export function Heatmap({
  title,
  rowLabels,
  colLabels,
  matrix,
  testId,
  cellHeight = 16,
}: {
  title: string;
  rowLabels: string[];
  colLabels: string[];
  matrix: (number | null)[][];
  testId?: string;
  cellHeight?: number;
}) {
  const [lo, hi] = valueRange(matrix);
  const labelWidth = Math.min(180, 8 + 6.5 * Math.max(4, ...rowLabels.map((l) => l.length)));
  const cols = Math.max(1, ...matrix.map((r) => r.length));
  const width = 640;
  const cellWidth = (width - labelWidth - 8) / cols;
  const height = rowLabels.length * cellHeight + 28;
  const tickEvery = Math.max(1, Math.ceil(cols / 8));
  return (
    <figure className="heatmap" data-testid={testId}>
      <figcaption>
        <span>{title}</span>
        <span className="legend-ramp" aria-hidden>
          <span className="mono">{formatNumber(lo, 3)}</span>
          <span className="ramp" />
          <span className="mono">{formatNumber(hi, 3)}</span>
        </span>
      </figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} width="100%" role="img" aria-label={title}>
        {rowLabels.map((label, r) => (
          <text
            key={label}
            x={labelWidth - 6}
            y={r * cellHeight + cellHeight * 0.72}
            className="hm-label"
            textAnchor="end"
          >
            {label.length > 26 ? `…${label.slice(-25)}` : label}
          </text>
        ))}
        {matrix.map((row, r) =>
          row.map((v, c) => (
            <rect
              // biome-ignore lint/suspicious/noArrayIndexKey: cells are positional
              key={`${r}-${c}`}
              x={labelWidth + c * cellWidth}
              y={r * cellHeight}
              width={Math.max(1, cellWidth - 1)}
              height={cellHeight - 1}
              fill={v !== null && Number.isFinite(v) ? rampColor((v - lo) / (hi - lo)) : 'var(--grid)'}
            >
              <title>{`${rowLabels[r]} @ ${colLabels[c] ?? c}: ${formatNumber(v)}`}</title>
            </rect>
          )),
        )}
        {colLabels.map((label, c) =>
          c % tickEvery === 0 || c === colLabels.length - 1 ? (
            <text
              key={label}
              x={labelWidth + c * cellWidth + cellWidth / 2}
              y={rowLabels.length * cellHeight + 16}
              className="hm-label"
              textAnchor="middle"
            >
              {label}
            </text>
          ) : null,
        )}
      </svg>
    </figure>
  );
}
