import { describe, expect, it } from 'vitest';
import {
  actionRows, actionsFromRows, byFolder, mailboxErrorKey, mailboxSummary, moveAmong, moveToPosition, newAction, outcomeText,
} from './mailbox';

describe('mailbox actions', () => {
  it('keeps only the parameters of each type and the spaces of a prefix', () => {
    const rows = [
      { ...newAction('move'), folder: ' Ships/Seven ', address: 'left@over' },
      { ...newAction('tag_subject'), prefix: '[Fleet] ' },
      { ...newAction('refuse') },
      { ...newAction('importance'), value: 'low' },
      { ...newAction('stop'), folder: 'ignored' },
    ];
    expect(actionsFromRows(rows)).toEqual([
      { type: 'move', folder: 'Ships/Seven' }, { type: 'tag_subject', prefix: '[Fleet] ' }, { type: 'refuse' },
      { type: 'importance', value: 'low' }, { type: 'stop' },
    ]);
  });
  it('score points: a signed decimal, in the forms and the summary', () => {
    const rows = [{ ...newAction('score'), points: ' -0.5 ' }, { ...newAction('move'), folder: 'Junk' }];
    const acts = actionsFromRows(rows);
    expect(acts).toEqual([{ type: 'score', points: -0.5 }, { type: 'move', folder: 'Junk' }]);
    expect(actionsFromRows(actionRows(acts))).toEqual(acts);
    expect(mailboxErrorKey('rule.actions[0].points', rows, {})).toBe(`actions.${rows[0].key}.points`);
    expect(mailboxSummary({ when: { field: 'score', op: 'gt', value: 6 }, except: null, actions: acts }))
      .toBe('score > 6 → score -0.5, move to Junk');
  });
  it('round-trips through the forms', () => {
    const a = [{ type: 'forward_copy', address: 'a@example.org' }, { type: 'add_header', name: 'X-Sorted', value: 'yes' }];
    expect(actionsFromRows(actionRows(a))).toEqual(a);
    expect(actionRows([]).length).toBe(1);
  });
  it('names the control of an error path', () => {
    const rows = actionRows([{ type: 'stop' }, { type: 'move', folder: '..' }]);
    expect(mailboxErrorKey('rule.actions[1].folder', rows, {})).toBe(`actions.${rows[1].key}.folder`);
    expect(mailboxErrorKey('rule.actions[0].folder', rows, {})).toBe(`actions.${rows[0].key}.type`);
    expect(mailboxErrorKey('rule.actions', rows, {})).toBe('actions');
    expect(mailboxErrorKey('rule.actions[9].type', rows, {})).toBe('actions');
    expect(mailboxErrorKey('rule.name', rows, {})).toBe('name');
    expect(mailboxErrorKey(null, rows, {})).toBe(null);
  });
});

describe('mailbox list', () => {
  const r = (id: number, folder: string) => ({ id, actions: [{ type: 'move', folder }] });
  it('filters by folder, any case', () => {
    expect(byFolder([r(1, 'Ships/Seven'), r(2, 'Bills')], 'seven').map((x) => x.id)).toEqual([1]);
    expect(byFolder([r(1, 'a'), r(2, 'b')], ' ').length).toBe(2);
  });
  it('moves among the visible rules, keeping the others in order', () => {
    expect(moveAmong([1, 2, 3, 4, 5], [2, 4, 5], 4, -1)).toEqual([1, 4, 2, 3, 5]);
    expect(moveAmong([1, 2, 3, 4, 5], [2, 4, 5], 2, 1)).toEqual([1, 3, 4, 2, 5]);
    expect(moveAmong([1, 2, 3], [1, 2, 3], 1, -1)).toEqual([1, 2, 3]);
  });
  it('moves to a position of the whole set, clamped', () => {
    expect(moveToPosition([1, 2, 3, 4], 4, 1)).toEqual([4, 1, 2, 3]);
    expect(moveToPosition([1, 2, 3, 4], 1, 99)).toEqual([2, 3, 4, 1]);
    expect(moveToPosition([1, 2, 3, 4], 9, 1)).toEqual([1, 2, 3, 4]);
  });
  it('summarises a rule and an outcome', () => {
    expect(mailboxSummary({ when: { field: 'to_cc', op: 'contains', value: 'fleet' }, except: null,
      actions: [{ type: 'move', folder: 'Fleet' }, { type: 'stop' }] })).toBe('To or Cc contains “fleet” → move to Fleet, stop');
    expect(outcomeText({ action: 'deliver', folder: 'Fleet', copy_folders: ['All'] })).toBe('delivered to folder Fleet; copies in All');
    expect(outcomeText(undefined)).toMatch(/inbox/);
  });
});
