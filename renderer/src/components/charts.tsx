import { useId, useMemo, useState } from 'react';
import {
  Bar,
  BarChart,
  CartesianGrid,
  Legend,
  Line,
  LineChart,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts';
import { formatNumber } from '../lib/format.ts';
import { emaSmooth } from '../lib/smoothing.ts';

export interface Series {
  key: string;
  name: string;
  color: string;
  dashed?: boolean;
}

type Row = Record<string, number | null | string>;

const axisStyle = { fontSize: 11, fill: 'var(--muted)' };

/**
 * A line chart over steps with optional EMA smoothing (raw curve kept faint behind the smoothed one) and a
 * log-scale toggle. Rows are drawn as given; the engine or the store thinned them (engine/common/thinning.ts).
 */
export function CurveChart({
  title,
  rows,
  series,
  smoothing = false,
  logToggle = false,
  height = 200,
  testId,
}: {
  title: string;
  rows: Row[];
  series: Series[];
  smoothing?: boolean;
  logToggle?: boolean;
  height?: number;
  testId?: string;
}) {
  const [weight, setWeight] = useState(smoothing ? 0.6 : 0);
  const [log, setLog] = useState(false);
  const id = useId();
  const data = useMemo(() => {
    if (rows.length === 0) return rows;
    const out: Row[] = rows.map((r) => ({ ...r }));
    for (const s of series) {
      const values = rows.map((r) => (typeof r[s.key] === 'number' ? (r[s.key] as number) : null));
      const smoothed = weight > 0 ? emaSmooth(values, weight) : values;
      out.forEach((row, i) => {
        const keep = (v: number | null) => (log && v !== null && v <= 0 ? null : v);
        row[`${s.key}__raw`] = keep(values[i]);
        row[s.key] = keep(smoothed[i]);
      });
    }
    return out;
  }, [rows, series, weight, log]);
  const empty = rows.length === 0 || series.every((s) => rows.every((r) => typeof r[s.key] !== 'number'));
  return (
    <div
      className="chart"
      data-testid={testId}
      data-points={rows.length}
      data-last-step={rows.length > 0 ? String(rows[rows.length - 1].step) : undefined}
    >
      <div className="chart-head">
        <h3>{title}</h3>
        <div className="chart-tools">
          {smoothing && (
            <label className="mini" htmlFor={`${id}-smooth`}>
              smoothing
              <input
                id={`${id}-smooth`}
                type="range"
                min={0}
                max={0.99}
                step={0.01}
                value={weight}
                onChange={(e) => setWeight(Number(e.target.value))}
              />
              <span className="mono">{weight.toFixed(2)}</span>
            </label>
          )}
          {logToggle && (
            <label className="mini">
              <input type="checkbox" checked={log} onChange={(e) => setLog(e.target.checked)} /> log
            </label>
          )}
        </div>
      </div>
      {empty ? (
        <div className="chart-empty" style={{ height }}>
          no data yet
        </div>
      ) : (
        <ResponsiveContainer width="100%" height={height}>
          <LineChart data={data} margin={{ top: 6, right: 12, bottom: 2, left: 0 }}>
            <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" />
            <XAxis
              dataKey="step"
              type="number"
              domain={['dataMin', 'dataMax']}
              tick={axisStyle}
              allowDecimals={false}
            />
            <YAxis
              scale={log ? 'log' : 'auto'}
              domain={['auto', 'auto']}
              tick={axisStyle}
              width={56}
              tickFormatter={(v: number) => formatNumber(v, 4)}
              allowDataOverflow={log}
            />
            <Tooltip
              contentStyle={{ background: 'var(--panel)', border: '1px solid var(--border)', fontSize: 12 }}
              formatter={(v) => (typeof v === 'number' ? formatNumber(v) : String(v))}
              labelFormatter={(l) => `step ${l}`}
            />
            {series.length > 1 && <Legend wrapperStyle={{ fontSize: 12 }} />}
            {weight > 0 &&
              series.map((s) => (
                <Line
                  key={`${s.key}-raw`}
                  dataKey={`${s.key}__raw`}
                  stroke={s.color}
                  strokeOpacity={0.25}
                  dot={false}
                  isAnimationActive={false}
                  legendType="none"
                  connectNulls
                  name={`${s.name} (raw)`}
                />
              ))}
            {series.map((s) => (
              <Line
                key={s.key}
                dataKey={s.key}
                name={s.name}
                stroke={s.color}
                strokeWidth={2}
                strokeDasharray={s.dashed ? '5 4' : undefined}
                dot={rows.length < 30}
                isAnimationActive={false}
                connectNulls
              />
            ))}
          </LineChart>
        </ResponsiveContainer>
      )}
    </div>
  );
}

export function BarsChart({
  title,
  rows,
  bars,
  height = 220,
  testId,
}: {
  title: string;
  rows: Row[];
  bars: { key: string; name: string; color: string }[];
  height?: number;
  testId?: string;
}) {
  return (
    <div className="chart" data-testid={testId}>
      <div className="chart-head">
        <h3>{title}</h3>
      </div>
      {rows.length === 0 ? (
        <div className="chart-empty" style={{ height }}>
          no data
        </div>
      ) : (
        <ResponsiveContainer width="100%" height={height}>
          <BarChart data={rows} margin={{ top: 6, right: 12, bottom: 2, left: 0 }}>
            <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" vertical={false} />
            <XAxis dataKey="label" tick={axisStyle} interval="preserveStartEnd" />
            <YAxis tick={axisStyle} width={56} tickFormatter={(v: number) => formatNumber(v, 3)} />
            <Tooltip
              contentStyle={{ background: 'var(--panel)', border: '1px solid var(--border)', fontSize: 12 }}
              formatter={(v) => (typeof v === 'number' ? formatNumber(v) : String(v))}
              labelFormatter={(l, payload) => String(payload?.[0]?.payload?.full ?? l)}
            />
            {bars.length > 1 && <Legend wrapperStyle={{ fontSize: 12 }} />}
            {bars.map((b) => (
              <Bar key={b.key} dataKey={b.key} name={b.name} fill={b.color} isAnimationActive={false} />
            ))}
          </BarChart>
        </ResponsiveContainer>
      )}
    </div>
  );
}
