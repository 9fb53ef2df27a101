// Unit tests of the server rules page's pure helpers (vitest).
import { describe, expect, it } from 'vitest';
import {
  actionForm, actionFromForm, condFromNode, condFromRoot, errorKey, moveBy, moveTo, newGroup, newRow, nodeFromCond,
  opsFor, parseImport, rootFromCond, ruleSummary, splitRecipients, withField, type Cond, type GroupState, type PathMap,
  type RowState,
} from './rules';

const subject = (v: string): Cond => ({ field: 'header', header: 'Subject', op: 'contains', value: v });

describe('condition tree <-> editor', () => {
  const trees: [string, Cond][] = [
    ['a lone leaf', subject('Viagra')],
    ['the guide example', { any: [subject('music'), subject('cd')] }],
    ['nested groups with NOT on a row and a group', {
      all: [
        subject('Viagra'),
        { not: { field: 'sender', op: 'ends_with', value: '@example.org', case: 'sensitive' } },
        { not: { any: [{ field: 'size', op: 'gt', value: 1000 }, { field: 'flag', op: 'is', value: 'tls' }] } },
        { any: [{ field: 'client_address', op: 'in_network', value: ['10.0.0.0/8', '2001:db8::/32'] },
          { field: 'client_address', op: 'in_network', value: '192.0.2.0/24' }] },
      ],
    }],
    ['a negated lone leaf', { not: { field: 'attachment_name', op: 'matches', value: '\\.(exe|scr)$' } }],
  ];
  for (const [name, c] of trees) {
    it(`round trip: ${name}`, () => {
      const root = rootFromCond(c);
      expect(root.kind).toBe('group');
      expect(condFromRoot(root, 'rule.when', {}, false)).toEqual(c);
    });
  }

  it('a root group of several rows reads as a group; NOT on a row is {"not": leaf}', () => {
    const a = newRow('header');
    a.value = 'Viagra';
    const b = { ...newRow('size'), op: 'gt', value: '5000', not: true };
    const root = newGroup('all', [a, b]);
    expect(condFromRoot(root, 'rule.when', {}, false)).toEqual({
      all: [subject('Viagra'), { not: { field: 'size', op: 'gt', value: 5000 } }],
    });
  });

  it('an empty except is null; an empty when is still sent (the API names it)', () => {
    expect(condFromRoot(newGroup('all'), 'rule.except', {}, true)).toBeNull();
    expect(condFromRoot(newGroup('any'), 'rule.when', {}, false)).toEqual({ any: [] });
  });

  it('values: integers for sizes, a list for several networks, text as typed otherwise', () => {
    const m: PathMap = {};
    const row = (p: Partial<RowState>): RowState => ({ ...newRow(), ...p });
    expect(condFromNode(row({ field: 'size', op: 'lt', value: ' 12 ' }), 'p', m)).toEqual({ field: 'size', op: 'lt', value: 12 });
    expect(condFromNode(row({ field: 'size', op: 'lt', value: 'big' }), 'p', m)).toEqual({ field: 'size', op: 'lt', value: 'big' });
    expect(condFromNode(row({ field: 'client_address', op: 'in_network', value: '10.0.0.0/8,\n192.0.2.0/24' }), 'p', m))
      .toEqual({ field: 'client_address', op: 'in_network', value: ['10.0.0.0/8', '192.0.2.0/24'] });
    expect(condFromNode(row({ field: 'header', header: ' X-Spam ', op: 'is', value: ' yes ', sensitive: true }), 'p', m))
      .toEqual({ field: 'header', header: 'X-Spam', op: 'is', value: ' yes ', case: 'sensitive' });
  });

  it('changing the field keeps an operator it takes and drops one it does not', () => {
    const r = { ...newRow('header'), op: 'matches' };
    expect(withField(r, 'sender').op).toBe('matches');
    expect(withField(r, 'size').op).toBe('gt');
    expect(withField(r, 'flag')).toMatchObject({ op: 'is', value: 'mime_limit', header: '' });
    expect(withField(withField(r, 'flag'), 'sender')).toMatchObject({ op: 'is', value: '' });
    expect(withField({ ...r, value: 'keep' }, 'body').value).toBe('keep');
    expect(opsFor('client_address')).toEqual(['is', 'is_not', 'in_network', 'in_list']);
    expect(opsFor('body')).not.toContain('in_list');
  });

  it('nodeFromCond folds double negation', () => {
    const n = nodeFromCond({ not: { not: subject('x') } });
    expect(n).toMatchObject({ kind: 'row', not: false, value: 'x' });
  });
});

describe('API error paths name the editor control', () => {
  const a = { ...newRow('header'), value: 'Viagra' };
  const b = { ...newRow('header'), value: '(' , op: 'matches' };
  const inner = { ...newRow('client_address'), op: 'in_network', value: '10.0.0.0/8 300.0.0.0/8' };
  const g: GroupState = { ...newGroup('any', [{ ...newRow('sender'), value: 'x' }, inner]), not: true };
  const root = newGroup('all', [a, b, g]);
  const ex = newGroup('all', [{ ...newRow('sender'), value: 'boss@' }]);
  const map: PathMap = {};
  condFromRoot(root, 'rule.when', map, false);
  condFromRoot(ex, 'rule.except', map, true);

  it('a row value, in the rule and in a test set', () => {
    expect(errorKey('rule.when.all[1].value', map)).toBe(`${b.key}.value`);
    expect(errorKey('rules[0].when.all[1].value', map)).toBe(`${b.key}.value`);
    expect(errorKey('rule.when.all[0].header', map)).toBe(`${a.key}.header`);
  });
  it('inside a negated group; one network of a list', () => {
    expect(errorKey('rule.when.all[2].not.any[1].value[1]', map)).toBe(`${inner.key}.value`);
    expect(errorKey('rule.when.all[2].not.any', map)).toBe(`${g.key}`);
  });
  it('a lone except row; the action, the name', () => {
    expect(errorKey('rule.except.value', map)).toBe(`${ex.items[0].key}.value`);
    expect(errorKey('rule.action.enhanced', map)).toBe('action.enhanced');
    expect(errorKey('rule.action', map)).toBe('action.type');
    expect(errorKey('rule.name', map)).toBe('name');
    expect(errorKey('when.all[1].value', map)).toBe(`${b.key}.value`);
  });
  it('anything else is no control', () => {
    expect(errorKey(null, map)).toBeNull();
    expect(errorKey('message', map)).toBeNull();
    expect(errorKey('rules[1].name', map)).toBeNull();
  });
});

describe('actions', () => {
  it('only the parameters of the type, only when filled', () => {
    const f = { ...actionForm(), type: 'refuse', code: '554', enhanced: ' 5.7.1 ', text: '', address: 'x@y' };
    expect(actionFromForm(f)).toEqual({ type: 'refuse', code: 554, enhanced: '5.7.1' });
    expect(actionFromForm({ ...f, type: 'quarantine' })).toEqual({ type: 'quarantine' });
    expect(actionFromForm({ ...f, type: 'tag', subject_prefix: '[SPAM] ' })).toEqual({ type: 'tag', subject_prefix: '[SPAM] ' });
    expect(actionFromForm({ ...f, type: 'bcc' })).toEqual({ type: 'bcc', address: 'x@y' });
  });
  it('a stored action fills the form', () => {
    expect(actionForm({ type: 'defer', code: 451 })).toMatchObject({ type: 'defer', code: '451', text: '' });
  });
});

describe('summaries', () => {
  it('condition, exception and action on one line', () => {
    expect(ruleSummary({
      when: { all: [subject('Viagra'), { any: [{ field: 'size', op: 'gt', value: 100 }, { not: subject('x') }] }] },
      except: { field: 'sender', op: 'is', value: 'boss@example.org' },
      action: { type: 'refuse', code: 550, text: 'No' },
    })).toBe('Subject contains “Viagra” and (size > 100 or not (Subject contains “x”)) except sender is “boss@example.org” → refuse 550 “No”');
    expect(ruleSummary({ when: subject('a'), except: null, action: { type: 'tag', subject_prefix: '[S] ' } }))
      .toBe('Subject contains “a” → tag subject prefix “[S] ”');
  });
});

describe('the spam score', () => {
  it('score and score part rows: numeric operators, decimals as numbers, the part as name', () => {
    expect(opsFor('score')).toEqual(['gt', 'lt', 'is', 'is_not']);
    expect(opsFor('score_part')).toEqual(['gt', 'lt', 'is', 'is_not']);
    const p = withField(newRow('header'), 'score_part');
    expect(p.op).toBe('gt');
    expect(p.part).toBe('BAYES');
    const map: PathMap = {};
    const c = condFromNode({ ...p, value: ' -0.5 ', sensitive: true }, 'rule.when', map);
    expect(c).toEqual({ field: 'score_part', name: 'BAYES', op: 'gt', value: -0.5 });
    expect(errorKey('rule.when.name', map)).toBe(`${p.key}.part`);
    const s = withField(newRow('header'), 'score');
    expect(condFromNode({ ...s, value: '+5' }, 'rule.when', {})).toEqual({ field: 'score', op: 'gt', value: 5 });
    /* not a decimal: sent as typed, so the API names the value */
    expect(condFromNode({ ...s, value: 'high' }, 'rule.when', {})).toEqual({ field: 'score', op: 'gt', value: 'high' });
    const back = nodeFromCond({ field: 'score_part', name: 'DKIM_PASS', op: 'is', value: 0 }) as RowState;
    expect([back.field, back.part, back.op, back.value]).toEqual(['score_part', 'DKIM_PASS', 'is', '0']);
  });
  it('the score action: signed decimal points', () => {
    const f = { ...actionForm(), type: 'score', points: ' +2.5 ', address: 'x@y' };
    expect(actionFromForm(f)).toEqual({ type: 'score', points: 2.5 });
    expect(actionFromForm({ ...f, points: '-1' })).toEqual({ type: 'score', points: -1 });
    expect(actionFromForm({ ...f, points: 'lots' })).toEqual({ type: 'score', points: 'lots' });
    expect(actionForm({ type: 'score', points: -0.5 })).toMatchObject({ type: 'score', points: '-0.5' });
    expect(errorKey('rule.action.points', {})).toBe('action.points');
  });
  it('the list shows "score +2.5"', () => {
    expect(ruleSummary({ when: subject('Viagra'), except: null, action: { type: 'score', points: 2.5 } }))
      .toBe('Subject contains “Viagra” → score +2.5');
    expect(ruleSummary({
      when: { all: [{ field: 'score_part', name: 'BAYES', op: 'gt', value: 1 }, { field: 'score', op: 'lt', value: 15 }] },
      except: null, action: { type: 'score', points: -3 },
    })).toBe('score part BAYES > 1 and score < 15 → score -3');
  });
});

describe('order', () => {
  it('move up and down, clamped', () => {
    expect(moveBy([1, 2, 3], 3, -1)).toEqual([1, 3, 2]);
    expect(moveBy([1, 2, 3], 1, -1)).toEqual([1, 2, 3]);
    expect(moveBy([1, 2, 3], 1, 1)).toEqual([2, 1, 3]);
  });
  it('a drop takes the position of the row dropped on', () => {
    expect(moveTo([1, 2, 3, 4], 4, 0)).toEqual([4, 1, 2, 3]);
    expect(moveTo([1, 2, 3, 4], 1, 2)).toEqual([2, 3, 1, 4]);
    expect(moveTo([1, 2, 3], 9, 0)).toEqual([1, 2, 3]);
  });
});

describe('dry run and import input', () => {
  it('recipients by comma or line', () => {
    expect(splitRecipients(' a@x.test, b@y.test\n\nc@z.test;')).toEqual(['a@x.test', 'b@y.test', 'c@z.test']);
    expect(splitRecipients('')).toEqual([]);
  });
  it('an export or a listing imports; anything else is named', () => {
    expect(parseImport('[{"name":"a","id":3,"hits":9}]')).toEqual({ rules: [{ name: 'a' }] });
    expect(parseImport('{"rules":[{"name":"b"}]}')).toEqual({ rules: [{ name: 'b' }] });
    expect(parseImport('{"name":"c"}')).toHaveProperty('error');
    expect(parseImport('[{')).toHaveProperty('error');
  });
});
