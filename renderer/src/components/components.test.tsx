// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ModuleInfo } from '../../../engine/common/contract.ts';
import { fieldsFromSchema } from '../lib/schemaForm.ts';
import { Heatmap } from './heatmap.tsx';
import { ModuleTree } from './ModuleTree.tsx';
import { SchemaForm } from './SchemaForm.tsx';

afterEach(cleanup);

describe('SchemaForm', () => {
  const fields = fieldsFromSchema({
    type: 'object',
    properties: {
      r: { type: 'integer', minimum: 1, default: 8, description: 'LoRA rank' },
      useDora: { type: 'boolean', default: false },
    },
  });

  it('sends typed values and refuses out-of-range ones in place', () => {
    const onChange = vi.fn();
    render(<SchemaForm fields={fields} values={{ r: 8 }} onChange={onChange} />);
    const r = screen.getByLabelText(/^r/) as HTMLInputElement;
    fireEvent.change(r, { target: { value: '16' } });
    expect(onChange).toHaveBeenLastCalledWith({ r: 16 });
    fireEvent.change(r, { target: { value: '0' } });
    expect(screen.getByText('r must be ≥ 1')).toBeTruthy();
    expect(onChange).toHaveBeenCalledTimes(1);
    fireEvent.click(screen.getByLabelText(/^use dora/));
    expect(onChange).toHaveBeenLastCalledWith({ useDora: true });
  });

  it('labels a field in words, with the field name as a hint and the description as help', () => {
    render(<SchemaForm fields={fields} values={{}} onChange={() => {}} />);
    expect(screen.getByText('LoRA rank').className).toBe('field-help');
    expect(screen.getByText('useDora').tagName).toBe('CODE');
  });

  it('keeps typed text as typed: decimals, exponents, and invalid text with its reason', () => {
    const lr = fieldsFromSchema({
      type: 'object',
      properties: { learningRate: { type: 'number', exclusiveMinimum: 0, default: 1e-3 } },
    });
    const onChange = vi.fn();
    const { rerender } = render(<SchemaForm fields={lr} values={{}} onChange={onChange} />);
    const input = screen.getByLabelText(/^learning rate/) as HTMLInputElement;
    // what a user's keystrokes produce, one prefix at a time
    let values: Record<string, unknown> = {};
    for (const text of ['0', '0.', '0.0', '0.00', '0.000', '0.0002']) {
      fireEvent.change(input, { target: { value: text } });
      values = onChange.mock.calls.at(-1)?.[0] ?? values;
      rerender(<SchemaForm fields={lr} values={values} onChange={onChange} />);
      expect(input.value).toBe(text);
    }
    expect(onChange).toHaveBeenLastCalledWith({ learningRate: 0.0002 });
    fireEvent.change(input, { target: { value: '2e-4' } });
    expect(input.value).toBe('2e-4');
    fireEvent.change(input, { target: { value: 'abc' } });
    expect(input.value).toBe('abc');
    expect(input.getAttribute('aria-invalid')).toBe('true');
    expect(screen.getByTestId('field-error').textContent).toMatch(/“abc” is not a number/);
    expect(onChange).toHaveBeenLastCalledWith({ learningRate: 0.0002 });
  });
});

describe('ModuleTree', () => {
  const modules: ModuleInfo[] = [
    { name: 'h.0.attn.c_attn', type: 'Conv1D', shape: [8, 24], params: 192, adaptable: 'Conv1D' },
    { name: 'h.0.mlp.c_fc', type: 'Conv1D', shape: [8, 32], params: 256, adaptable: 'Conv1D' },
  ];

  it('checks the selected modules and toggles a parent', () => {
    const onToggle = vi.fn();
    render(<ModuleTree modules={modules} selected={new Set(['h.0.attn.c_attn'])} onToggle={onToggle} />);
    const leaf = screen.getByLabelText('adapt h.0.attn.c_attn') as HTMLInputElement;
    expect(leaf.checked).toBe(true);
    const block = screen.getByLabelText('adapt h.0') as HTMLInputElement;
    expect(block.indeterminate).toBe(true);
    fireEvent.click(block);
    expect(onToggle.mock.calls[0][0].path).toBe('h.0');
  });
});

describe('Heatmap', () => {
  it('draws one cell per value with its exact value in the tooltip', () => {
    const { container } = render(
      <Heatmap
        title="norms"
        rowLabels={['0', '1']}
        colLabels={['10', '20']}
        matrix={[
          [1, 2],
          [3, null],
        ]}
      />,
    );
    const cells = container.querySelectorAll('rect');
    expect(cells).toHaveLength(4);
    expect(cells[2].querySelector('title')?.textContent).toBe('1 @ 10: 3');
  });
});
